package ring

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ringwire/ringwire/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.LeaveOutExamples(Available())
	goleak.VerifyTestMain(m)
}

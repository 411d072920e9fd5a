package bufring

// Rotation spreads receives over several groups so that one running dry does
// not stall them: a receive that ended with ENOBUFS on one group is re-armed at
// once on another that still has buffers, while the first refills. CQEs do not
// name their group, so the caller records which group each receive was armed
// with (Group.ID in its operation record) and decodes with Rotation.Group.
// Like a Group, a Rotation is used only from its loop's thread.
type Rotation struct {
	groups []*Group
	cur    int
	// Rotations counts how often Next moved away from a starved group.
	Rotations uint64
}

// NewRotation returns a Rotation over groups, starting with the first.
func NewRotation(groups ...*Group) *Rotation {
	return &Rotation{groups: append([]*Group(nil), groups...)}
}

// Current returns the group new receives are armed with.
func (r *Rotation) Current() *Group { return r.groups[r.cur] }

// Next returns the group to (re-)arm a receive with: the current group while
// the kernel holds any of its buffers, otherwise the group with the most
// buffers available, which becomes current. Call Flush on the groups first.
func (r *Rotation) Next() *Group {
	if r.groups[r.cur].Available() > 0 {
		return r.groups[r.cur]
	}
	best := r.cur
	for i, g := range r.groups {
		if g.Available() > r.groups[best].Available() {
			best = i
		}
	}
	if best != r.cur {
		r.cur = best
		r.Rotations++
	}
	return r.groups[r.cur]
}

// Group returns the group with buffer group id id, or nil.
func (r *Rotation) Group(id uint16) *Group {
	for _, g := range r.groups {
		if g.id == id {
			return g
		}
	}
	return nil
}

// Flush publishes every group's released buffers.
func (r *Rotation) Flush() {
	for _, g := range r.groups {
		g.Flush()
	}
}

// Available returns the buffers the kernel holds across all groups.
func (r *Rotation) Available() int {
	n := 0
	for _, g := range r.groups {
		n += g.Available()
	}
	return n
}

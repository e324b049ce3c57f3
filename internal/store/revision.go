package store

// Revision returns the store-wide revision: it grows with every committed
// change to any service, so an unchanged value means nothing changed.
func (s *Store) Revision() uint64 { return s.revision.Load() }

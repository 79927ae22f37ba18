//go:build race

package hugepage

// raceDetector: the race detector's allocator touches what it hands out,
// so a prepared heap would be made resident (100 MB and half a second of
// CPU for a resolver's defaults).
const raceDetector = true

package cachedb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// A format 1 file (see schema.go) ends with a trailer that bbolt ignores
// (it reads only the pages up to its high-water mark):
//
//	magic    16 bytes, trailerMagic
//	length    8 bytes big-endian, the size of the file before the trailer
//	checksum  4 bytes big-endian, CRC-32C of those bytes
//
// bbolt checksums only its meta pages, so without it a file damaged on disk
// (a bad sector, a scribble, a copy cut short) would be read as it is; with
// it such a file is refused before bbolt reads a page. It does not stand
// against a file forged on purpose: whoever can write the data directory can
// compute a checksum. Such a file still meets bbolt's own checks, the
// recovery of its panics in read, and the cache's checks of each record.
//
// The current format has no trailer: it is updated in place, and each
// record carries a checksum of its own instead.
const trailerMagic = "sovdns-cachedb\x00\x01"

const trailerLen = len(trailerMagic) + 8 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// verify checks the trailer of the file at path.
func verify(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	size, sealed, err := trailer(f)
	if err != nil {
		return err
	}
	if !sealed {
		return fmt.Errorf("%w: no checksum (cut short, or not a cache file)", ErrCorrupt)
	}
	t := make([]byte, 4)
	if _, err := f.ReadAt(t, size+int64(trailerLen)-4); err != nil {
		return err
	}
	sum, err := checksum(f, size)
	if err != nil {
		return err
	}
	if sum != binary.BigEndian.Uint32(t) {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return nil
}

// trailer returns the size of f's data, before its trailer, and whether it
// has one.
func trailer(f *os.File) (size int64, sealed bool, err error) {
	info, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	size = info.Size()
	if size < int64(trailerLen) {
		return size, false, nil
	}
	t := make([]byte, trailerLen)
	if _, err := f.ReadAt(t, size-int64(trailerLen)); err != nil {
		return 0, false, err
	}
	if !bytes.Equal(t[:len(trailerMagic)], []byte(trailerMagic)) ||
		binary.BigEndian.Uint64(t[len(trailerMagic):]) != uint64(size-int64(trailerLen)) {
		return size, false, nil
	}
	return size - int64(trailerLen), true, nil
}

// checksum returns the CRC-32C of the first size bytes of f.
func checksum(f *os.File, size int64) (uint32, error) {
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}

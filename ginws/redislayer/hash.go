package redislayer

import "hash/crc32"

// consistentHash picks the shard of a key name the way channels_redis does: the low 12 bits of the
// CRC-32 of the name, divided into ring equal slices. Every process sharing a layer must agree on
// it, so it is byte for byte channels_redis' _consistent_hash.
func consistentHash(name string, ring int) int {
	if ring <= 1 {
		return 0
	}
	v := crc32.ChecksumIEEE([]byte(name)) & 0xFFF
	return int(float64(v) / (4096 / float64(ring)))
}

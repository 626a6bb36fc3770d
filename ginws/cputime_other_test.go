//go:build !unix

package ginws_test

// processCPU is not measured here: benchmarks report 0 CPU per delivery.
func processCPU() int64 { return 0 }

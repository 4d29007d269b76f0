//go:build kilnfake

package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/kiln-project/kiln/internal/compose/composetest"
)

// A kiln built with the kilnfake tag, which only tests do, builds fake
// images (see composetest): tests that run kiln as processes, to kill
// them, exercise the queue, failover and recovery without paying for real
// builds. The fake is tuned by the environment of that test binary:
// KILN_FAKE_STAGE_TIME (a duration each stage takes) and KILN_FAKE_SIZE
// (the artifact's size in bytes).
func init() {
	b := &composetest.Builder{}
	if v := os.Getenv("KILN_FAKE_STAGE_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			panic(fmt.Sprintf("KILN_FAKE_STAGE_TIME=%q: %v", v, err))
		}
		b.StageTime = d
	}
	if v := os.Getenv("KILN_FAKE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			panic(fmt.Sprintf("KILN_FAKE_SIZE=%q: %v", v, err))
		}
		b.Size = n
	}
	testBuilder = b
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/kiln-project/kiln/internal/telemetry"
)

// otlpFlag registers --otlp-endpoint, which turns tracing on.
func otlpFlag(f *pflag.FlagSet, endpoint *string) {
	f.StringVar(endpoint, "otlp-endpoint", os.Getenv("KILN_OTLP_ENDPOINT"), "send traces over OTLP/HTTP to this collector, such as http://collector:4318 (/v1/traces is added); empty: tracing off (default $KILN_OTLP_ENDPOINT)")
}

// startTracing sets tracing up as --otlp-endpoint says, for service, and
// returns what flushes the spans still buffered when the command ends.
func startTracing(ctx context.Context, endpoint, service string, log *slog.Logger) (func(), error) {
	if endpoint != "" {
		if _, err := telemetry.TracesURL(endpoint); err != nil {
			return nil, fmt.Errorf("--otlp-endpoint: %w", err)
		}
	}
	telemetry.LogErrorsTo(log)
	shutdown, err := telemetry.Setup(ctx, endpoint, service, version())
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint: %w", err)
	}
	if endpoint != "" {
		log.Info("tracing", "otlp_endpoint", endpoint)
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("flushing the last spans failed", "err", err)
		}
	}, nil
}

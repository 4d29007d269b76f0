package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/slo"
)

func newSLOCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "slo",
		Short: "Work with the service's objectives (SLOs)",
		Long: `slo works with the service level objectives of "kiln serve", written as
data in an SLO file (deploy/slo/slos.yaml in kiln's source). docs/slo.md
describes each objective and the alerts generated from it.`,
	}
	rules := &cobra.Command{
		Use:   "rules FILE",
		Short: "Print the Prometheus rules that measure the SLOs in FILE",
		Long: `rules reads an SLO file, checks it, and prints the Prometheus rule file
that measures its objectives: per SLO, the error ratio recorded over
5m, 30m, 1h, 2h, 6h, 1d, 3d and 30d, the objective, and two burn-rate
alerts (Page and Ticket).`,
		Example: "  kiln slo rules deploy/slo/slos.yaml > deploy/prometheus/slo.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := slo.Load(args[0])
			if err != nil {
				return err
			}
			out, err := slo.Rules(f)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	cmd.AddCommand(rules)
	return cmd
}

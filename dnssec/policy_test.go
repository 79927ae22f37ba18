package dnssec_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sovdns/sovdns/dnssec"
)

// With validity and refresh left to it, a policy fits any zone with an
// EXPIRE up to 6 weeks and TTLs up to 2 days; explicit values the guard
// refuses are refused with what would do.
func TestPolicyFit(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name                string
		expire, maxTTL      uint32
		refresh, validity   time.Duration // after Fit
		refusedWithDefaults bool
	}{
		{"small expire: unchanged", 604800, 3600, 15 * day, 21 * day, false},
		{"14 days, 1-day TTLs", 1209600, 86400, 16 * day, 22 * day, true},
		{"RIPE-203: 1000 hours", 3600000, 86400, 43 * day, 49 * day, true},
		{"6 weeks, 2-day TTLs", 3628800, 172800, 45 * day, 51 * day, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			soa := &dns.SOA{Expire: tt.expire}
			p := dnssec.DefaultPolicy()
			err := p.CheckZone(soa, tt.maxTTL)
			if refused := errors.Is(err, dnssec.ErrExpiryGuard); refused != tt.refusedWithDefaults {
				t.Fatalf("defaults: %v, want refused %v", err, tt.refusedWithDefaults)
			}
			fit := p.Fit(soa, tt.maxTTL)
			if fit.Refresh.D() != tt.refresh || fit.Validity.D() != tt.validity {
				t.Fatalf("fit: refresh %v validity %v, want %v and %v", fit.Refresh.D(), fit.Validity.D(), tt.refresh, tt.validity)
			}
			if err := fit.CheckZone(soa, tt.maxTTL); err != nil {
				t.Fatalf("the fitted policy is refused: %v", err)
			}
			if err != nil {
				// The refusal names the values that fit.
				want := "--refresh " + days(tt.refresh) + " --validity " + days(tt.validity)
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal %q does not suggest %q", err, want)
				}
			}
		})
	}
}

func days(d time.Duration) string { return fmt.Sprintf("%dd", d/(24*time.Hour)) }

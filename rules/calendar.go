package rules

import "time"

// CST is China Standard Time, the time zone of the counters. The date at the
// counter, not the server's or UTC's, decides which policy version is in force
// (SetlDate), which year a person's counters belong to, and the days and months
// that clearing, the monitor and the bureau's console sum over. It is defined
// here, once, so that every package of the engine's module cuts days alike; the
// wire module (adapters/fsi) keeps its own fsi.CST because it cannot import this one.
var CST = time.FixedZone("CST", 8*3600)

// ProvinceOf is the province of a region code (admdvs): its first two digits
// followed by "0000". The insured's province is who pays for a cross-province
// settlement, so clearing, the ledger's clearing accounts and the console's
// statements all group regions by it. A code shorter than two characters is
// returned as it is.
func ProvinceOf(admdvs string) string {
	if len(admdvs) < 2 {
		return admdvs
	}
	return admdvs[:2] + "0000"
}

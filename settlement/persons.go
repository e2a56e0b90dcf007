package settlement

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/medsettle/medsettle/rules"
)

var personsHeader = []string{"psn_no", "psn_name", "gend", "certno", "card_no", "insuplc_admdvs", "insutype",
	"retired", "assistance", "acct_balc", "registered_admdvs", "reg_begn", "reg_endn"}

// ParsePersons reads the registry seed (persons.csv) and validates every row
// against rs: known insured region, insutype with a policy, valid ID check
// digit, known assistance kind. The first problem refuses the file with its line.
func ParsePersons(r io.Reader, rs *rules.RuleSet) ([]Person, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(personsHeader)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("persons: header: %w", err)
	}
	if strings.Join(head, ",") != strings.Join(personsHeader, ",") {
		return nil, fmt.Errorf("persons:1: header %q, want %q", strings.Join(head, ","), strings.Join(personsHeader, ","))
	}
	var out []Person
	seen := map[string]bool{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("persons: %w", err)
		}
		line, _ := cr.FieldPos(0) // only valid for a record read without error
		p, err := parsePerson(rec, rs)
		if err != nil {
			return nil, fmt.Errorf("persons:%d: %w", line, err)
		}
		for _, k := range []string{"psn_no " + p.PsnNo, "certno " + p.Certno, "card_no " + p.CardNo} {
			if seen[k] {
				return nil, fmt.Errorf("persons:%d: %s listed twice", line, k)
			}
			seen[k] = true
		}
		out = append(out, p)
	}
}

func parsePerson(rec []string, rs *rules.RuleSet) (Person, error) {
	p := Person{PsnNo: rec[0], Name: rec[1], Gend: rec[2], Certno: rec[3], CardNo: rec[4],
		InsuredRegion: rec[5], Insutype: rec[6], Retired: rec[7] == "1", Assistance: rec[8], RegRegion: rec[10]}
	if p.PsnNo == "" || p.CardNo == "" {
		return p, errors.New("psn_no and card_no are required")
	}
	if !ValidCertno(p.Certno) {
		return p, fmt.Errorf("certno %q is not a valid ID number (GB 11643 check digit)", p.Certno)
	}
	if rs.Regions[p.InsuredRegion] == nil {
		return p, fmt.Errorf("insuplc_admdvs %q is not a pooling region", p.InsuredRegion)
	}
	if p.Insutype != "310" && p.Insutype != "390" {
		return p, fmt.Errorf("insutype %q, want 310 or 390", p.Insutype)
	}
	if rec[7] != "0" && rec[7] != "1" {
		return p, fmt.Errorf("retired %q, want 0 or 1", rec[7])
	}
	switch p.Assistance {
	case "", "dibao", "tekun":
	default:
		return p, fmt.Errorf("assistance %q, want '', dibao or tekun", p.Assistance)
	}
	var err error
	if p.OpeningBalc, err = rules.ParseMoney(rec[9]); err != nil || p.OpeningBalc < 0 {
		return p, fmt.Errorf("acct_balc %q is not a non-negative amount", rec[9])
	}
	if p.RegRegion != "" {
		if rs.Regions[p.RegRegion] == nil {
			return p, fmt.Errorf("registered_admdvs %q is not a pooling region", p.RegRegion)
		}
		if p.RegBegin, err = rules.ParseDate(rec[11]); err != nil {
			return p, fmt.Errorf("reg_begn: %w", err)
		}
		if p.RegEnd, err = rules.ParseDate(rec[12]); err != nil {
			return p, fmt.Errorf("reg_endn: %w", err)
		}
		if p.RegEnd < p.RegBegin {
			return p, fmt.Errorf("reg_endn %s before reg_begn %s", p.RegEnd, p.RegBegin)
		}
	}
	return p, nil
}

// ValidCertno checks an 18-character resident ID number's GB 11643 check digit.
func ValidCertno(s string) bool {
	if len(s) != 18 {
		return false
	}
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 17; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		sum += int(s[i]-'0') * weights[i]
	}
	return s[17] == "10X98765432"[sum%11]
}

package postgres

import (
	"fmt"

	"github.com/medsettle/medsettle/rules"
)

// Column conversions shared by the row mappings: amounts as decimal text,
// dates as text.

func money(s string) (rules.Money, error) {
	m, err := rules.ParseMoney(s)
	if err != nil {
		return 0, fmt.Errorf("stored amount %q: %w", s, err)
	}
	return m, nil
}

// scanMoney parses several DECIMAL-as-TEXT columns at once.
func scanMoney(dst []*rules.Money, src []string) error {
	for i := range dst {
		m, err := money(src[i])
		if err != nil {
			return err
		}
		*dst[i] = m
	}
	return nil
}

func optDate(d rules.Date) any {
	if d == 0 {
		return nil
	}
	return d.String()
}

package httpapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInstitutionOf(t *testing.T) {
	for body, want := range map[string]string{
		`{"infno":"1101","fixmedins_code":"H15010000011","input":{"data":{}}}`:                            "H15010000011",
		`{"infno":"1101","input":{"fixmedins_code":"X","a":[1,{"b":2}]},"fixmedins_code":"P42010000201"}`: "P42010000201",
		`{"a":1,"b":true,"c":null,"d":[1,"]}",{"e":"}"}],"fixmedins_code":"H15010000011","z":-1.5e3}`:     "H15010000011",
		` { "a" : "x\"y\\" ,` + "\n\t" + `"fixmedins_code" : "H15010000011" } `:                           "H15010000011",
		`{"fixmedins_code":"H15010000011","fixmedins_code":"H42010000001"}`:                               "H42010000001", // the last, as json.Unmarshal
		`{"fixmedins_code":"H1501000\u0030011"}`:                                                          "H15010000011", // an escape: json.Unmarshal reads it
		`{"fixmedins_code":"H23010000001","input":{`:                                                      "",             // malformed: the platform refuses it
		`{"fixmedins_code":"H15010000011"} trailing`:                                                      "",
		`{"infno":"1101","input":{}}`:                                                                     "",
		`{"fixmedins_code":12}`:                                                                           "",
		`["fixmedins_code","H15010000011"]`:                                                               "",
		`{"infno":"1101" "fixmedins_code":"H15010000011"}`:                                                "",
		`{}`:       "",
		``:         "",
		`not json`: "",
	} {
		require.Equal(t, want, institutionOf([]byte(body)), body)
		var env struct {
			FixmedinsCode string `json:"fixmedins_code"`
		}
		if json.Unmarshal([]byte(body), &env) == nil {
			require.Equal(t, env.FixmedinsCode, institutionOf([]byte(body)), "as json.Unmarshal: %s", body)
		}
	}
}

// BenchmarkInstitutionOf against a full json.Unmarshal of a 2204 body.
func BenchmarkInstitutionOf(b *testing.B) {
	lines := make([]map[string]string, 5)
	for i := range lines {
		lines[i] = map[string]string{"feedetl_sn": "1", "mdtrt_id": "M1501000000000000000000001", "psn_no": "15010000000000000001",
			"chrg_bchno": "B1", "fee_ocur_time": "2026-11-29 10:00:00", "med_list_codg": "XJ01DDA062B002010100345",
			"medins_list_codg": "XJ01DDA062B002010100345", "det_item_fee_sumamt": "4501.50", "cnt": "3", "pric": "1500.50"}
	}
	in, _ := json.Marshal(map[string]any{"feedetail": lines})
	body := []byte(`{"infno":"2204","msgid":"H15010000011202611291000001234","mdtrtarea_admvs":"150100","insuplc_admdvs":"",` +
		`"recer_sys_code":"MEDSETTLE","dev_no":"","dev_safe_info":"","cainfo":"","signtype":"","infver":"V1.0","opter_type":"1",` +
		`"opter":"0001","opter_name":"收费员","inf_time":"2026-11-29 10:00:00","fixmedins_code":"H15010000011","fixmedins_name":"x",` +
		`"sign_no":"","input":` + string(in) + `}`)
	b.Run("institutionOf", func(b *testing.B) {
		for b.Loop() {
			if institutionOf(body) != "H15010000011" {
				b.Fatal()
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		for b.Loop() {
			var env struct {
				FixmedinsCode string `json:"fixmedins_code"`
			}
			if json.Unmarshal(body, &env) != nil || !strings.HasPrefix(env.FixmedinsCode, "H") {
				b.Fatal()
			}
		}
	})
}

package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// ProvinceRouter serves several province platforms behind one address, as
// `medsettle dev` does: a counter call goes to the platform of its
// institution's province, every other path to Default.
type ProvinceRouter struct {
	Rules     *rules.RuleSet
	Provinces map[string]http.Handler
	Default   http.Handler
}

func (pr *ProvinceRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path || r.Method != http.MethodPost {
		pr.Default.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	var env struct {
		FixmedinsCode string `json:"fixmedins_code"`
	}
	_ = json.Unmarshal(body, &env) // a malformed body is the platform's to refuse
	var target http.Handler
	if in := pr.Rules.Institutions[env.FixmedinsCode]; in != nil {
		target = pr.Provinces[pr.Rules.Province(in.Admdvs)]
	}
	if target == nil {
		now := time.Now()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(Answer{Infcode: -1, InfRefmsgid: refmsgid(now), RefmsgTime: now.In(cst).Format(timeLayout),
			RespondTime: now.In(cst).Format(timeLayout), ErrMsg: "fixmedins_code " + quote(env.FixmedinsCode) + " is not an institution of any platform here"})
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	target.ServeHTTP(w, r)
}

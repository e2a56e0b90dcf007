package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/medsettle/medsettle/adapters/fsi"
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
	code := institutionOf(body) // a malformed body is the platform's to refuse
	var target http.Handler
	if in := pr.Rules.Institutions[code]; in != nil {
		target = pr.Provinces[pr.Rules.Province(in.Admdvs)]
	}
	if target == nil {
		now := time.Now()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(fsi.Answer{Infcode: -1, InfRefmsgid: refmsgid(now), RefmsgTime: now.In(rules.CST).Format(timeLayout),
			RespondTime: now.In(rules.CST).Format(timeLayout), ErrMsg: "fixmedins_code " + quote(code) + " is not an institution of any platform here"})
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	target.ServeHTTP(w, r)
}

// institutionOf is the envelope's top-level fixmedins_code ("" when there
// is none or the body is no JSON object: the platform refuses those). It
// walks the top level byte by byte, skipping over the values (the input is
// most of the body) without decoding them, and takes the last
// fixmedins_code as json.Unmarshal would; anything it does not expect (an
// escape in a key or the code, a malformation) is left to json.Unmarshal.
func institutionOf(body []byte) string {
	code, ok := scanInstitution(body)
	if !ok {
		var env struct {
			FixmedinsCode string `json:"fixmedins_code"`
		}
		_ = json.Unmarshal(body, &env)
		code = env.FixmedinsCode
	}
	return code
}

func scanInstitution(b []byte) (string, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i = skipSpace(b, i+1)
	code := ""
	if i < len(b) && b[i] == '}' {
		return "", skipSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return "", false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return "", false
		}
		i = skipSpace(b, i+1)
		if string(key) == "fixmedins_code" {
			var v []byte
			if v, j, ok = plainString(b, i); !ok {
				return "", false
			}
			code = string(v)
		} else if j, ok = skipValue(b, i); !ok {
			return "", false
		}
		i = skipSpace(b, j)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			return code, skipSpace(b, i+1) == len(b)
		default:
			return "", false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a string without escapes at b[i]: its contents and the index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, j, false
		}
	}
	return nil, len(b), false
}

// skipValue skips the JSON value at b[i] (checking its brackets and
// strings, not its literals); it returns the index after it.
func skipValue(b []byte, i int) (int, bool) {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(b) {
				return i, false
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i, true // the end of a literal, and of its container
			}
			depth--
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i, true
			}
		}
		i++
		if depth == 0 && (b[i-1] == '"' || b[i-1] == '}' || b[i-1] == ']') {
			return i, true
		}
	}
	return i, depth == 0
}

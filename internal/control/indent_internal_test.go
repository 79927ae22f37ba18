package control

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// indentList gives, an element at a time, what json.Indent gives for the
// whole list writeJSONList writes.
func TestIndentListMatchesIndent(t *testing.T) {
	type elem struct {
		Zone  string   `json:"zone"`
		Names []string `json:"names,omitempty"`
		Note  string   `json:"note,omitempty"`
	}
	tests := map[string][]elem{
		"empty": {},
		"one":   {{Zone: "example."}},
		"three": {{Zone: "a."}, {Zone: "b.", Names: []string{"x", "y"}}, {Zone: "c.", Note: "],\n[ \"quoted\" }{"}},
	}
	for name, list := range tests {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeJSONList(rec, list)
			var want bytes.Buffer
			if err := json.Indent(&want, bytes.TrimSpace(rec.Body.Bytes()), "", "  "); err != nil {
				t.Fatal(err)
			}
			want.WriteByte('\n')
			var got bytes.Buffer
			if err := indentList(&got, bytes.NewReader(rec.Body.Bytes())); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Fatalf("indentList wrote\n%s\njson.Indent\n%s", got.String(), want.String())
			}
		})
	}
}

// A list cut short or not as writeJSONList writes it is an error.
func TestIndentListRefusesBrokenLists(t *testing.T) {
	for _, in := range []string{"", "[{\"zone\":\"a.\"}\n", "[{\"zone\":\"a.\"}\n{\"zone\":\"b.\"}\n]\n", "{\"zone\":\"a.\"}\n", "[{\"zone\":\n]\n"} {
		if err := indentList(&bytes.Buffer{}, strings.NewReader(in)); err == nil {
			t.Errorf("indentList(%q) took it", in)
		}
	}
}

package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A condition's message is cut to a bound, and cutting the message already written must give the
// same message back: the next sync compares what it would write with what the Foo has, and a
// message that changes on every cut is a status write (and an Event) that changes nothing.
func TestTruncateIsBoundedAndStable(t *testing.T) {
	const max = 16
	for _, tc := range []struct{ name, in string }{
		{"short", "refused"},
		{"exactly the bound", strings.Repeat("a", max)},
		{"ASCII over the bound", strings.Repeat("a", 40)},
		{"a multi-byte character across the bound", strings.Repeat("a", max-1) + "ü" + strings.Repeat("b", 10)},
		{"multi-byte characters only", strings.Repeat("界", 20)},
		{"invalid UTF-8 (bytes quoted from another component)", strings.Repeat("\xad\xbf0", 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			once := truncate(tc.in, max)
			if len(once) > max {
				t.Errorf("truncate gave %d bytes (%q), more than %d", len(once), once, max)
			}
			if twice := truncate(once, max); twice != once {
				t.Errorf("cut again, %q became %q", once, twice)
			}
			if len(tc.in) <= max && once != tc.in {
				t.Errorf("a message within the bound was changed: %q became %q", tc.in, once)
			}
			if len(tc.in) > max && (!strings.HasSuffix(once, "...") || !strings.HasPrefix(tc.in, strings.TrimSuffix(once, "..."))) {
				t.Errorf("%q is not the start of %q followed by \"...\"", once, tc.in)
			}
			if utf8.ValidString(tc.in) && !utf8.ValidString(once) {
				t.Errorf("a character was split: %q", once)
			}
		})
	}
}

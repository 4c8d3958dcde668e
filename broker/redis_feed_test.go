package broker

import (
	"testing"

	"github.com/matryer/is"
)

func TestFeedChannels(t *testing.T) {
	tests := []struct {
		list string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"4:news", []string{"news"}, true},
		{"4:news6:sports", []string{"news", "sports"}, true},
		{"19:private-a,b;c=d@e.f3:a:b", []string{"private-a,b;c=d@e.f", "a:b"}, true},
		{"0:", []string{""}, true},
		// What lua/publish.lua never writes: the channels read so far, and
		// not ok.
		{"news,sports", nil, false},
		{"9:news", nil, false},
		{"4:news:", []string{"news"}, false},
		{"-1:x", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			is := is.New(t)
			got, ok := feedChannels(tt.list)
			is.Equal(got, tt.want)
			is.Equal(ok, tt.ok)
		})
	}
}

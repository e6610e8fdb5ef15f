package metadata

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// xnode is one XML element with the line it starts on.
type xnode struct {
	name     string
	attrs    map[string]string
	text     string
	children []*xnode
	line     int
}

func (n *xnode) child(name string) *xnode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// parseXML parses b strictly into a tree; errors carry file and line.
func parseXML(file string, b []byte) (*xnode, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var stack []*xnode
	var root *xnode
	var text strings.Builder
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, fileErr(file, se.Line, "malformed XML: %s", se.Msg)
			}
			return nil, fileErr(file, lineAt(b, d.InputOffset()), "malformed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xnode{name: t.Name.Local, attrs: map[string]string{}, line: lineAt(b, off)}
			for _, a := range t.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, fileErr(file, n.line, "second root element <%s>", n.name)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
			text.Reset()
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			n := stack[len(stack)-1]
			if len(n.children) == 0 {
				n.text = strings.TrimSpace(text.String())
			}
			stack = stack[:len(stack)-1]
			text.Reset()
		}
	}
	if root == nil {
		return nil, fileErr(file, lineAt(b, int64(len(b))), "no XML root element")
	}
	if len(stack) > 0 {
		return nil, fileErr(file, lineAt(b, int64(len(b))), "truncated XML: <%s> is not closed", stack[len(stack)-1].name)
	}
	return root, nil
}

package main

// statusView shows status's report.
type statusView interface {
	Status(st statusReport) error
}

func newStatusView(s Streams, jsonOut, noColorFlag bool) statusView {
	if jsonOut {
		return statusJSON{newViewBase(s, noColorFlag)}
	}
	return statusHuman{newViewBase(s, noColorFlag)}
}

// statusHuman shows the report as tables.
type statusHuman struct{ viewBase }

func (v statusHuman) Status(st statusReport) error {
	writeStatusText(v.s.Out, st, v.color)
	return nil
}

// statusJSON shows the report as one indented JSON document.
type statusJSON struct{ viewBase }

func (v statusJSON) Status(st statusReport) error { return writeStatusJSON(v.s.Out, st) }

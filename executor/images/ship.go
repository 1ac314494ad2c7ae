package images

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/executor/internal/msg"
)

// shipDest is one node a stream is sent to, and how that went.
type shipDest struct {
	node string
	// load consumes the stream (Node.LoadImage). It may return before the
	// end of the stream (on error): the others go on without it.
	load func(ctx context.Context, r io.Reader) error
	// filter, if set, rewrites the stream for this node only (stripLayers):
	// sent, rate and progress count what comes out of it.
	filter func(io.Reader) io.Reader
	// skip is how many of the image's layers (base first) the node holds
	// and filter leaves out; 0: the whole image.
	skip int

	total int64        // expected bytes (for progress), 0 if unknown
	sent  atomic.Int64 // bytes handed to load so far
	start time.Time
	end   atomic.Pointer[time.Time]
	err   error // set once load returned
}

func (d *shipDest) elapsed() time.Duration {
	if e := d.end.Load(); e != nil {
		return e.Sub(d.start)
	}
	return time.Since(d.start)
}

type fanOptions struct {
	// chunk is the size of a read from the source (default 1 MiB); window
	// is how many chunks a destination may lag behind the source before
	// the source waits for it (default 32).
	chunk, window int
	// rate caps each destination's bytes per second (0: no cap).
	rate int64
}

// fanOut reads src once and feeds every destination's load in parallel.
// Chunks are shared read-only; each destination has its own bounded queue,
// so a slow one holds the others back only once it lags a whole window
// behind, and a failed one is dropped (its queue no longer fed) without
// disturbing the others. A read error of src reaches every loader as its
// read error (the node discards the partial tarball). fanOut returns when
// every load has returned.
func fanOut(ctx context.Context, src io.Reader, dests []*shipDest, o fanOptions) {
	if o.chunk <= 0 {
		o.chunk = 1 << 20
	}
	if o.window <= 0 {
		o.window = 32
	}
	type sink struct {
		d    *shipDest
		ch   chan []byte
		dead chan struct{} // closed when load returned
		r    *chunkReader
	}
	sinks := make([]*sink, len(dests))
	var wg sync.WaitGroup
	for i, d := range dests {
		s := &sink{d: d, ch: make(chan []byte, o.window), dead: make(chan struct{})}
		s.r = &chunkReader{ctx: ctx, ch: s.ch}
		sinks[i] = s
		if d.start.IsZero() {
			d.start = time.Now()
		}
		var r io.Reader = s.r
		if d.filter != nil {
			r = d.filter(r)
		}
		r = &meter{ctx: ctx, r: r, d: d, rate: o.rate}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A nil error before the end of the stream is fine: the
			// engine read a whole tarball (up to its end marker).
			err := d.load(ctx, r)
			now := time.Now()
			d.err = err // before end: readers of end may read err
			d.end.Store(&now)
			close(s.dead)
		}()
	}
	var srcErr error
	live := len(sinks)
feed:
	for live > 0 {
		buf := make([]byte, o.chunk)
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			chunk := buf[:n]
			for _, s := range sinks {
				if s.ch == nil {
					continue
				}
				select {
				case s.ch <- chunk:
				case <-s.dead:
					s.ch = nil
					live--
				case <-ctx.Done():
					srcErr = ctx.Err()
					break feed
				}
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			srcErr = fmt.Errorf("local engine: %w", err)
			break
		}
	}
	for _, s := range sinks {
		if s.ch != nil {
			s.r.srcErr.Store(&srcErr)
			close(s.ch)
		}
	}
	wg.Wait()
}

// chunkReader is one destination's view of the fanned-out stream.
type chunkReader struct {
	ctx    context.Context
	ch     <-chan []byte
	cur    []byte
	srcErr atomic.Pointer[error] // set before ch is closed
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.cur) == 0 {
		select {
		case c, ok := <-r.ch:
			if !ok {
				if e := r.srcErr.Load(); e != nil && *e != nil {
					return 0, *e
				}
				return 0, io.EOF
			}
			r.cur = c
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// meter counts what a destination's load reads (after its filter) and
// holds it to the rate.
type meter struct {
	ctx  context.Context
	r    io.Reader
	d    *shipDest
	rate int64
}

func (r *meter) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	sent := r.d.sent.Add(int64(n))
	if r.rate > 0 && n > 0 {
		// Sleep until the bytes sent so far fit the rate.
		due := r.d.start.Add(time.Duration(float64(sent) / float64(r.rate) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-r.ctx.Done():
				return n, r.ctx.Err()
			}
		}
	}
	return n, err
}

// gzipStream compresses src on the fly (fastest level: the point is to
// save link time, not to archive). Close the result to stop it early.
func gzipStream(src io.Reader) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		_, err := io.Copy(zw, src)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// progressBoard shows one line per destination of a transfer: bytes, rate
// and ETA. On a terminal the lines are redrawn in place several times a
// second; otherwise a plain line per unfinished destination is printed
// every plainEvery, and one when it finishes.
type progressBoard struct {
	w        io.Writer
	mu       *sync.Mutex // shared with other output on w
	terminal bool
	dests    []*shipDest
	drawn    bool
	printed  map[*shipDest]bool
	stopc    chan struct{}
	donec    chan struct{}
}

const (
	terminalEvery = 200 * time.Millisecond
	plainEvery    = 5 * time.Second
)

func newProgressBoard(w io.Writer, mu *sync.Mutex, terminal bool, dests []*shipDest) *progressBoard {
	return &progressBoard{w: w, mu: mu, terminal: terminal, dests: dests, printed: map[*shipDest]bool{},
		stopc: make(chan struct{}), donec: make(chan struct{})}
}

func (b *progressBoard) start() {
	if b.w == nil {
		close(b.donec)
		return
	}
	every := plainEvery
	if b.terminal {
		every = terminalEvery
	}
	go func() {
		defer close(b.donec)
		t := time.NewTicker(every)
		defer t.Stop()
		fine := time.NewTicker(terminalEvery) // finished lines, promptly
		defer fine.Stop()
		for {
			select {
			case <-b.stopc:
				b.draw(true)
				return
			case <-t.C:
				b.draw(false)
			case <-fine.C:
				if !b.terminal {
					b.finished()
				}
			}
		}
	}()
}

func (b *progressBoard) stop() {
	select {
	case <-b.stopc:
	default:
		close(b.stopc)
	}
	<-b.donec
}

// finished prints the line of every destination that finished since.
func (b *progressBoard) finished() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.dests {
		if d.end.Load() != nil && !b.printed[d] {
			b.printed[d] = true
			fmt.Fprintln(b.w, b.line(d))
		}
	}
}

func (b *progressBoard) draw(final bool) {
	if !b.terminal {
		if !final {
			b.mu.Lock()
			for _, d := range b.dests {
				if d.end.Load() == nil {
					fmt.Fprintln(b.w, b.line(d))
				}
			}
			b.mu.Unlock()
		}
		b.finished()
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	if b.drawn {
		fmt.Fprintf(&s, "\x1b[%dA", len(b.dests))
	}
	for _, d := range b.dests {
		s.WriteString("\r\x1b[2K" + b.line(d) + "\n")
	}
	b.drawn = true
	io.WriteString(b.w, s.String())
}

func (b *progressBoard) line(d *shipDest) string {
	sent := d.sent.Load()
	el := d.elapsed()
	rate := 0.0
	if el > 0 {
		rate = float64(sent) / el.Seconds()
	}
	if d.end.Load() != nil {
		if d.err != nil {
			return fmt.Sprintf("  %-12s failed after %s: %s", d.node, humanSize(sent), msg.OneLine(d.err.Error()))
		}
		return fmt.Sprintf("  %-12s done: %s in %s (%s/s)", d.node, humanSize(sent), roundDuration(el), humanSize(int64(rate)))
	}
	if d.total > 0 && sent >= d.total {
		return fmt.Sprintf("  %-12s %s sent, the node is loading it", d.node, humanSize(sent))
	}
	if d.total <= 0 {
		return fmt.Sprintf("  %-12s %s  %s/s", d.node, humanSize(sent), humanSize(int64(rate)))
	}
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(d.total-sent) / rate * float64(time.Second))).Round(time.Second).String()
	}
	pct := float64(sent) / float64(d.total)
	bar := ""
	if b.terminal {
		const width = 20
		full := int(pct * width)
		bar = "[" + strings.Repeat("=", full) + strings.Repeat(" ", width-full) + "] "
	}
	return fmt.Sprintf("  %-12s %s%s / %s (%.0f%%)  %s/s  ETA %s", d.node, bar, humanSize(sent), humanSize(d.total), pct*100, humanSize(int64(rate)), eta)
}

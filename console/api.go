package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"mime"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/fallacies/fallacies/experiments/report"
)

// routes is the page and its API (docs/console.md).
func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", staticFiles())
	mux.HandleFunc("GET /api/topology", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, c.graph()) })
	mux.HandleFunc("GET /api/kinds", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, c.faults.kinds()) })
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		proxies, err := c.faults.observe(r.Context(), time.Now())
		writeJSON(w, http.StatusOK, c.state(time.Now(), proxies, err))
	})
	mux.HandleFunc("GET /api/events", c.serveEvents)
	mux.HandleFunc("POST /api/faults", func(w http.ResponseWriter, r *http.Request) {
		var req faultRequest
		if !readJSON(w, r, &req) {
			return
		}
		a, err := c.faults.add(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"name": a.Fault.Name, "text": a.Fault.String(), "since": a.Start})
	})
	mux.HandleFunc("DELETE /api/faults/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := c.faults.remove(r.Context(), r.PathValue("name")); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /api/faults", func(w http.ResponseWriter, r *http.Request) {
		if err := c.faults.removeAll(r.Context()); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/load", func(w http.ResponseWriter, r *http.Request) {
		var req loadRequest
		if !readJSON(w, r, &req) {
			return
		}
		if err := c.load.start(req); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, c.load.view(time.Now()))
	})
	mux.HandleFunc("DELETE /api/load", func(w http.ResponseWriter, r *http.Request) {
		c.load.stop()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/traces/{id}", c.serveWaterfall)
	mux.HandleFunc("POST /api/experiment", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if err := c.exp.start(req.Name); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, c.exp.state())
	})
	mux.HandleFunc("DELETE /api/experiment", func(w http.ResponseWriter, r *http.Request) {
		c.exp.stop()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /reports/{dir}/{file}", c.serveReport)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if reason := c.lockReason(); reason != "" {
				// The console of a run: a change would be measured by
				// its verdict too.
				writeJSON(w, http.StatusConflict, map[string]string{"error": reason})
				return
			}
		}
		mux.ServeHTTP(w, r)
		if r.Method != http.MethodGet {
			c.poke()
		}
	})
}

// state is what every page receives once a tick.
type state struct {
	Time       time.Time            `json:"time"`
	Links      map[string]linkStats `json:"links"`   // by link: a proxy name, or "load"
	Proxies    map[string]proxyView `json:"proxies"` // as Toxiproxy reports them
	ProxyError string               `json:"proxy_error,omitempty"`
	Faults     []faultView          `json:"faults"`  // the console's own
	Windows    []window             `json:"windows"` // every fault seen on, for the chart
	Load       loadView             `json:"load"`
	Slowest    []traceSummary       `json:"slowest"`
	Failed     []traceSummary       `json:"failed"`
	Experiment experimentView       `json:"experiment"`
	// Run is the run in progress, on the console of `fallacies run`.
	Run *runView `json:"run,omitempty"`
	// Locked says why the page's controls are disabled and the API
	// refuses every change ("" when they are not).
	Locked string `json:"locked,omitempty"`
}

func (c *Console) state(now time.Time, proxies map[string]proxyView, proxyErr error) state {
	st := state{Time: now, Links: c.live.linkStatsCopy(), Proxies: proxies, Faults: c.faults.consoleFaults(),
		Windows: c.faults.windowList(), Load: c.load.view(now), Experiment: c.exp.state()}
	st.Slowest, st.Failed = c.live.traceLists()
	if c.opts.Run {
		st.Run = c.run.state()
	}
	st.Locked = c.lockReason()
	if proxyErr != nil {
		st.ProxyError = proxyErr.Error()
	}
	if st.Proxies == nil {
		st.Proxies = map[string]proxyView{}
	}
	if st.Faults == nil {
		st.Faults = []faultView{}
	}
	if st.Windows == nil {
		st.Windows = []window{}
	}
	return st
}

// graphView is the topology the page draws.
type graphView struct {
	Nodes []node `json:"nodes"`
	Links []edge `json:"links"`
}

type node struct {
	ID string  `json:"id"`
	X  float64 `json:"x"`
	Y  float64 `json:"y"`
}

type edge struct {
	ID    string `json:"id"` // the link's name: its proxy, or "load"
	From  string `json:"from"`
	To    string `json:"to"`
	Proxy bool   `json:"proxy"` // a Toxiproxy proxy sits on it
}

// graph places the services and infrastructure and puts every proxy of
// the system on its link; a proxy the console does not know is drawn
// from order to a node of its own name.
func (c *Console) graph() graphView {
	g := graphView{
		Nodes: []node{{"load", 60, 230}, {"order", 250, 230}, {"user", 640, 50}, {"payment", 640, 215},
			{"nats", 640, 370}, {"notification", 880, 300}, {"ledger", 880, 440}},
		Links: []edge{{ID: linkLoad, From: "load", To: "order"}},
	}
	have := map[string]bool{}
	for _, n := range g.Nodes {
		have[n.ID] = true
	}
	extraY := 400.0
	for _, p := range slices.Sorted(maps.Keys(c.proxies())) {
		e := edge{ID: p, From: "order", To: p, Proxy: true}
		switch {
		case p == "user" || p == "user-http":
			e.To = "user"
		case p == "payment":
		case strings.HasPrefix(p, "payment-"):
			if !have[p] {
				n := 0
				fmt.Sscanf(strings.TrimPrefix(p, "payment-"), "%d", &n)
				g.Nodes = append(g.Nodes, node{p, 640 + 60*float64(n), 215 + 45*float64(n)})
				have[p] = true
			}
		case p == "nats-order":
			e.To = "nats"
		case p == "nats-payment":
			e.From, e.To = "payment", "nats"
		case strings.HasPrefix(p, "nats-") && have[strings.TrimPrefix(p, "nats-")]:
			e.From, e.To = "nats", strings.TrimPrefix(p, "nats-")
		default:
			if !have[p] {
				g.Nodes = append(g.Nodes, node{p, 280, extraY})
				extraY += 50
				have[p] = true
			}
		}
		g.Links = append(g.Links, e)
	}
	return g
}

// serveWaterfall answers the waterfall of a trace held, as an SVG
// fragment in the report's style.
func (c *Console) serveWaterfall(w http.ResponseWriter, r *http.Request) {
	t, ok := c.live.trace(r.PathValue("id"))
	if !ok {
		writeError(w, fmt.Errorf("%w: trace %s is not held (order traces of the last %v are)", errNotFound, r.PathValue("id"), traceKeep))
		return
	}
	svg := report.Waterfall("waterfall", exemplar(t, c.faults.windowList(), c.live.linkNames()))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, string(template.HTML(svg)))
}

// serveReport serves a file of a report folder the page's experiment
// wrote: the console's only window on the file system.
func (c *Console) serveReport(w http.ResponseWriter, r *http.Request) {
	dir, file := r.PathValue("dir"), r.PathValue("file")
	e := c.exp.state()
	ours := (e.Report != "" && path.Dir(e.Report) == "/reports/"+dir) || c.run.reportServed(dir)
	if !ours || c.opts.ReportsDir == "" || strings.ContainsAny(file, `/\`) || strings.HasPrefix(file, ".") {
		writeError(w, fmt.Errorf("%w: only the files of the reports of the page's experiments are served", errNotFound))
		return
	}
	root, err := os.OpenRoot(c.opts.ReportsDir)
	if err != nil {
		writeError(w, err)
		return
	}
	defer root.Close()
	f, err := root.Open(path.Join(dir, file))
	if err != nil {
		writeError(w, fmt.Errorf("%w: %s/%s", errNotFound, dir, file))
		return
	}
	defer f.Close()
	if ct := mime.TypeByExtension(path.Ext(file)); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	io.Copy(w, f)
}

// errNotFound is answered 404.
var errNotFound = errors.New("not found")

// maxBody bounds a request body.
const maxBody = 64 << 10

// readJSON decodes a JSON request body strictly into v, answering the
// error itself when it cannot. Only application/json is taken: a page
// of another site cannot send it without a preflight the console never
// answers.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "want Content-Type: application/json"})
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return false
	}
	return true
}

// writeError answers err with its status: 400 for a bad request, 404 for
// what is not there, 409 for a clash, 502 for the system's own errors.
func writeError(w http.ResponseWriter, err error) {
	var bad *badRequest
	var clash *conflict
	code := http.StatusBadGateway
	switch {
	case errors.As(err, &bad):
		code = http.StatusBadRequest
	case errors.As(err, &clash):
		code = http.StatusConflict
	case errors.Is(err, errNoFault), errors.Is(err, errNotFound):
		code = http.StatusNotFound
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

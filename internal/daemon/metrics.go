package daemon

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// Metrics are bpfd's Prometheus metrics, served in the text format at
// /metrics on the configured address:
//
//	bpfd_programs_loaded{type}                      managed programs, by program type
//	bpfd_unmanaged_programs                         the node's other BPF programs (not bpfd's chains)
//	bpfd_program_run_count_total{id,name,type}      runs of each managed program \ while BPF statistics
//	bpfd_program_run_time_seconds_total{id,name,type} time spent in it             / are on (programs in a
//	                                                chain as their chain accounts them)
//	bpfd_load_duration_seconds{result}              Load latency (histogram), result ok or error
//	bpfd_verifications_total{decision,reason}       trust decisions: allow, allow-unsigned, warn, deny, error
//	bpfd_cache_hits_total, bpfd_cache_misses_total  artifacts found in the cache / pulled
//	bpfd_cache_repairs_total                        damaged cached artifacts repaired
//	bpfd_requests_total{method,code}                API requests by gRPC status code
//	bpfd_policy_reloads_total{result}               trust policy reloads, ok or error
//	bpfd_policy_info{fingerprint}                   the trust policy in force (value 1)
//	bpfd_programs_not_admitted                      loaded programs the policy in force no longer admits
//	bpfd_programs_awaiting_judgement                programs adopted at start not judged yet (0 once judged)
//	bpfd_programs_revoked_total                     programs unloaded for it (revocation: unload)
//	bpfd_cache_size_bytes                           the cache's size, as last measured
//
// plus the Go runtime's and the process's standard metrics. A nil *Metrics
// counts nothing.
type Metrics struct {
	registry      *prometheus.Registry
	loads         *prometheus.HistogramVec
	verifications *prometheus.CounterVec
	cacheHits     prometheus.Counter
	cacheMisses   prometheus.Counter
	cacheRepairs  prometheus.Counter
	requests      *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	policy        *prometheus.GaugeVec
	revocations   prometheus.Counter
	cacheBytes    prometheus.Gauge

	programs    atomic.Pointer[programsFunc]
	stats       atomic.Pointer[statsFunc]
	notAdmitted atomic.Pointer[func() int]
	awaiting    atomic.Pointer[func() int]
}

type (
	programsFunc func(context.Context) ([]runtime.Program, error)
	statsFunc    func(context.Context) ([]runtime.ProgramStats, error)
)

// NewMetrics returns the metrics, registered on a registry of their own.
func NewMetrics(log *slog.Logger) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		loads: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bpfd_load_duration_seconds",
			Help:    "Time to serve a Load request: resolve, verify, load, attach, pin and record.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bpfd_verifications_total",
			Help: "Trust policy decisions on artifacts, by decision (allow, allow-unsigned, warn, deny, error) and reason.",
		}, []string{"decision", "reason"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bpfd_cache_hits_total",
			Help: "Artifacts used from the cache without pulling.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bpfd_cache_misses_total",
			Help: "Artifacts pulled into the cache.",
		}),
		cacheRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bpfd_cache_repairs_total",
			Help: "Cached artifacts found damaged (content not matching its digest) and repaired.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bpfd_requests_total",
			Help: "API requests, by method and gRPC status code.",
		}, []string{"method", "code"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bpfd_policy_reloads_total",
			Help: "Trust policy reloads (SIGHUP), by result.",
		}, []string{"result"}),
		policy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bpfd_policy_info",
			Help: "The trust policy in force, by fingerprint.",
		}, []string{"fingerprint"}),
		revocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bpfd_programs_revoked_total",
			Help: "Programs unloaded because the trust policy in force no longer admitted them (revocation: unload).",
		}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bpfd_cache_size_bytes",
			Help: "Bytes the artifact cache holds, as last measured (collection, cache list).",
		}),
	}
	m.registry.MustRegister(m.loads, m.verifications, m.cacheHits, m.cacheMisses, m.cacheRepairs, m.requests, m.reloads, m.policy, m.revocations, m.cacheBytes,
		&programCollector{m: m, log: log},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry the metrics are registered on.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

func (m *Metrics) setPrograms(f programsFunc) {
	if m != nil {
		m.programs.Store(&f)
	}
}

func (m *Metrics) setNotAdmitted(f func() int) {
	if m != nil {
		m.notAdmitted.Store(&f)
	}
}

func (m *Metrics) setAwaitingJudgement(f func() int) {
	if m != nil {
		m.awaiting.Store(&f)
	}
}

func (m *Metrics) revoked() {
	if m != nil {
		m.revocations.Inc()
	}
}

func (m *Metrics) cacheSize(bytes int64) {
	if m != nil {
		m.cacheBytes.Set(float64(bytes))
	}
}

func (m *Metrics) setStats(f statsFunc) {
	if m != nil {
		m.stats.Store(&f)
	}
}

func (m *Metrics) load(d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.loads.WithLabelValues(result).Observe(d.Seconds())
}

// fetched counts what the supply chain did for one request: cache hits,
// pulls, repairs and the trust policy's decision.
func (m *Metrics) fetched(res *supplychain.Result) {
	if m == nil || res == nil {
		return
	}
	m.cacheHits.Add(float64(res.CacheHits))
	m.cacheMisses.Add(float64(res.Pulls))
	m.cacheRepairs.Add(float64(res.Repairs))
	switch {
	case !res.Verified:
	case res.Verdict == nil:
		m.verifications.WithLabelValues("error", "").Inc()
	default:
		m.verifications.WithLabelValues(string(res.Verdict.Decision), string(res.Verdict.Reason)).Inc()
	}
}

func (m *Metrics) request(method, code string) {
	if m != nil {
		m.requests.WithLabelValues(method, code).Inc()
	}
}

func (m *Metrics) policyReload(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
}

func (m *Metrics) policyInForce(fingerprint string) {
	if m != nil {
		m.policy.Reset()
		m.policy.WithLabelValues(fingerprint).Set(1)
	}
}

// programCollector reports the managed programs at each scrape.
type programCollector struct {
	m   *Metrics
	log *slog.Logger
}

var (
	programsLoadedDesc = prometheus.NewDesc("bpfd_programs_loaded", "Programs bpfd manages, by program type.", []string{"type"}, nil)
	unmanagedDesc      = prometheus.NewDesc("bpfd_unmanaged_programs", "BPF programs on the node that bpfd did not load (not counting the programs bpfd runs its chains with).", nil, nil)
	runCountDesc       = prometheus.NewDesc("bpfd_program_run_count_total", "Runs of a managed program while BPF statistics are on; a program in a chain as its chain accounts them.", []string{"id", "name", "type"}, nil)
	runTimeDesc        = prometheus.NewDesc("bpfd_program_run_time_seconds_total", "Time spent running a managed program while BPF statistics are on; a program in a chain as its chain accounts it.", []string{"id", "name", "type"}, nil)
	notAdmittedDesc    = prometheus.NewDesc("bpfd_programs_not_admitted", "Loaded programs the trust policy in force no longer admits (judged at start and at each policy reload).", nil, nil)
	awaitingDesc       = prometheus.NewDesc("bpfd_programs_awaiting_judgement", "Programs adopted at start and not judged yet under the trust policy in force: bpfd serves first and judges them in the background.", nil, nil)
)

func (c *programCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- programsLoadedDesc
	ch <- notAdmittedDesc
	ch <- awaitingDesc
	ch <- unmanagedDesc
	ch <- runCountDesc
	ch <- runTimeDesc
}

func (c *programCollector) Collect(ch chan<- prometheus.Metric) {
	if f := c.m.notAdmitted.Load(); f != nil {
		ch <- prometheus.MustNewConstMetric(notAdmittedDesc, prometheus.GaugeValue, float64((*f)()))
	}
	if f := c.m.awaiting.Load(); f != nil {
		ch <- prometheus.MustNewConstMetric(awaitingDesc, prometheus.GaugeValue, float64((*f)()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if f := c.m.programs.Load(); f != nil {
		progs, err := (*f)(ctx)
		if err != nil {
			c.log.Warn("metrics: list programs", "error", err)
		} else {
			counts := map[progtype.Kind]int{}
			for _, k := range progtype.All() {
				counts[k] = 0
			}
			for _, p := range progs {
				counts[p.Kind]++
			}
			for k, n := range counts {
				ch <- prometheus.MustNewConstMetric(programsLoadedDesc, prometheus.GaugeValue, float64(n), string(k))
			}
		}
	}
	f := c.m.stats.Load()
	if f == nil {
		return
	}
	stats, err := (*f)(ctx)
	if err != nil {
		c.log.Warn("metrics: read program statistics", "error", err)
		return
	}
	unmanaged := 0
	for _, s := range stats {
		if s.ID == 0 {
			unmanaged++
			continue
		}
		if s.RunCount == 0 && s.RunTime == 0 {
			continue
		}
		labels := []string{strconv.FormatUint(uint64(s.ID), 10), s.Name, string(s.Kind)}
		ch <- prometheus.MustNewConstMetric(runCountDesc, prometheus.CounterValue, float64(s.RunCount), labels...)
		ch <- prometheus.MustNewConstMetric(runTimeDesc, prometheus.CounterValue, s.RunTime.Seconds(), labels...)
	}
	ch <- prometheus.MustNewConstMetric(unmanagedDesc, prometheus.GaugeValue, float64(unmanaged))
}

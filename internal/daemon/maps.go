package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/runtime/mapview"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// Map and event calls (docs/maps.md): any client allowed to use bpfd may
// read a program's maps and stream its events; only root, admins and the
// program's owner may write them.

// RecordTypeKey prefixes the metadata key that names the record type of a
// program's ring buffer or perf event array: RecordTypeKey + map name,
// e.g. "bpfd.io/record-type.events" = "struct event". A load's metadata
// gets it from the artifact's annotation ArtifactRecordTypeKey + map name
// unless the load sets it.
const RecordTypeKey = "bpfd.io/record-type."

// ArtifactRecordTypeKey prefixes the manifest annotation by which an
// artifact names the record type of a ring buffer or perf event array:
// ArtifactRecordTypeKey + map name, e.g. "io.bpfd.record-type.events" =
// "struct event" (docs/artifact-spec.md).
const ArtifactRecordTypeKey = "io.bpfd.record-type."

// maxRecordTypes bounds the record types an artifact's annotations add to
// a load's metadata, and maxRecordTypeLen the length of each.
const (
	maxRecordTypes   = 16
	maxRecordTypeLen = 256
)

// withRecordTypes returns md with the record types the artifact's
// annotations name, under RecordTypeKey, where md does not set them
// already; annotations that are too long or too many are left out.
func withRecordTypes(md, annotations map[string]string) map[string]string {
	var out map[string]string
	added := 0
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		name, ok := strings.CutPrefix(k, ArtifactRecordTypeKey)
		v := annotations[k]
		if !ok || name == "" || len(name) > 64 || v == "" || len(v) > maxRecordTypeLen || strings.ContainsAny(name, "=,\n") {
			continue
		}
		if _, set := md[RecordTypeKey+name]; set || added == maxRecordTypes {
			continue
		}
		if out == nil {
			out = maps.Clone(md)
			if out == nil {
				out = map[string]string{}
			}
		}
		out[RecordTypeKey+name] = v
		added++
	}
	if out == nil {
		return md
	}
	return out
}

// Events' batching: at most eventBatch records a response, a response at
// least every eventFlush while records are lost or dropped.
const (
	eventBatch = 512
	eventFlush = 250 * time.Millisecond
	// A map another stream reads is tried eventsClaimTries more times,
	// eventsClaimWait apart, before Events fails with AlreadyExists.
	eventsClaimTries = 10
	eventsClaimWait  = 100 * time.Millisecond
)

// openMap opens a managed program's map the request names.
func (s *server) openMap(ctx context.Context, id uint64, name string) (*runtime.OpenMap, error) {
	if id == 0 {
		return nil, invalid("id", "missing: give a program id")
	}
	if name == "" {
		return nil, invalid("map", "missing: give a map name")
	}
	return s.manager.OpenMap(ctx, runtime.ID(id), name)
}

func mapDescription(o *runtime.OpenMap) *pb.MapDescription {
	return &pb.MapDescription{
		KernelId: o.KernelID, MapType: o.Type.String(), KeySize: o.KeySize, ValueSize: o.ValueSize, MaxEntries: o.MaxEntries,
		KeyType: mapview.TypeName(o.Key), ValueType: mapview.TypeName(o.Value), PerCpu: o.PerCPU(),
	}
}

func mapEntryProto(e runtime.MapEntry) *pb.MapEntry {
	return &pb.MapEntry{Key: e.Key, Value: e.Value, KeyJson: e.KeyJSON, ValueJson: e.ValueJSON, PerCpuValues: e.PerCPU}
}

// mapKey returns the raw key of a request: raw, or JSON encoded with the
// key's BTF type.
func mapKey(o *runtime.OpenMap, raw []byte, text string) ([]byte, error) {
	switch {
	case len(raw) > 0 && text != "":
		return nil, invalid("key", "give key or key_json, not both")
	case text != "":
		return o.ParseKey(text)
	case len(raw) == 0:
		return nil, invalid("key", "missing")
	}
	return raw, nil
}

func (s *server) MapDump(ctx context.Context, in *pb.MapDumpRequest) (*pb.MapDumpResponse, error) {
	o, err := s.openMap(ctx, in.GetId(), in.GetMap())
	if err != nil {
		return nil, toStatus(err)
	}
	defer o.Close()
	entries, more, err := o.Dump(in.GetStartAfter(), int(min(in.GetMaxEntries(), runtime.MaxDumpEntries)), in.GetPerCpu())
	if err != nil {
		return nil, toStatus(fmt.Errorf("program %d: %w", in.GetId(), err))
	}
	out := &pb.MapDumpResponse{Map: mapDescription(o), More: more}
	for _, e := range entries {
		out.Entries = append(out.Entries, mapEntryProto(e))
	}
	return out, nil
}

func (s *server) MapGet(ctx context.Context, in *pb.MapGetRequest) (*pb.MapGetResponse, error) {
	o, err := s.openMap(ctx, in.GetId(), in.GetMap())
	if err != nil {
		return nil, toStatus(err)
	}
	defer o.Close()
	key, err := mapKey(o, in.GetKey(), in.GetKeyJson())
	if err != nil {
		return nil, toStatus(fmt.Errorf("program %d: %w", in.GetId(), err))
	}
	e, err := o.Lookup(key, in.GetPerCpu())
	if err != nil {
		return nil, toStatus(fmt.Errorf("program %d: %w", in.GetId(), err))
	}
	return &pb.MapGetResponse{Map: mapDescription(o), Entry: mapEntryProto(e)}, nil
}

// writableMap opens the map a write names, once the client may write the
// program's maps.
func (s *server) writableMap(ctx context.Context, id uint64, name string) (*runtime.OpenMap, error) {
	if id == 0 {
		return nil, invalid("id", "missing: give a program id")
	}
	who, _ := client(ctx)
	p, err := s.manager.Get(ctx, runtime.ID(id))
	if err != nil {
		return nil, err
	}
	if err := s.access.mayUse(who, "write the maps of", p); err != nil {
		return nil, err
	}
	return s.openMap(ctx, id, name)
}

func (s *server) MapUpdate(ctx context.Context, in *pb.MapUpdateRequest) (*pb.MapUpdateResponse, error) {
	err := func() error {
		o, err := s.writableMap(ctx, in.GetId(), in.GetMap())
		if err != nil {
			return err
		}
		defer o.Close()
		key, err := mapKey(o, in.GetKey(), in.GetKeyJson())
		if err != nil {
			return err
		}
		value := in.GetValue()
		switch {
		case len(value) > 0 && in.GetValueJson() != "":
			return invalid("value", "give value or value_json, not both")
		case in.GetValueJson() != "":
			if value, err = o.ParseValue(in.GetValueJson()); err != nil {
				return err
			}
		case len(value) == 0:
			return invalid("value", "missing")
		}
		return o.Update(key, value)
	}()
	if err != nil {
		return nil, toStatus(fmt.Errorf("program %d: %w", in.GetId(), err))
	}
	return &pb.MapUpdateResponse{}, nil
}

func (s *server) MapDelete(ctx context.Context, in *pb.MapDeleteRequest) (*pb.MapDeleteResponse, error) {
	err := func() error {
		o, err := s.writableMap(ctx, in.GetId(), in.GetMap())
		if err != nil {
			return err
		}
		defer o.Close()
		key, err := mapKey(o, in.GetKey(), in.GetKeyJson())
		if err != nil {
			return err
		}
		return o.Delete(key)
	}()
	if err != nil {
		return nil, toStatus(fmt.Errorf("program %d: %w", in.GetId(), err))
	}
	return &pb.MapDeleteResponse{}, nil
}

// Events streams a ring buffer's or perf event array's records until the
// client goes away. The first response says the stream is reading.
func (s *server) Events(in *pb.EventsRequest, stream pb.Bpfd_EventsServer) error {
	ctx := stream.Context()
	if in.GetBuffer() > runtime.MaxEventBuffer {
		return toStatus(invalid("buffer", "%d: at most %d", in.GetBuffer(), runtime.MaxEventBuffer))
	}
	o, err := s.openMap(ctx, in.GetId(), in.GetMap())
	if err != nil {
		return toStatus(err)
	}
	defer o.Close()
	opts := runtime.EventOptions{Buffer: int(in.GetBuffer())}
	name := in.GetRecordType()
	if name == "" {
		p, err := s.manager.Get(ctx, runtime.ID(in.GetId()))
		if err != nil {
			return toStatus(err)
		}
		name = p.Metadata[RecordTypeKey+in.GetMap()]
	}
	if name != "" {
		if opts.RecordType, err = o.RecordType(name); err != nil {
			return toStatus(err)
		}
	}
	r, err := o.Events(opts)
	// A stream the client just ended may still hold the map for a moment.
	for i := 0; i < eventsClaimTries && errors.Is(err, runtime.ErrConflict); i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(eventsClaimWait):
		}
		r, err = o.Events(opts)
	}
	if err != nil {
		return toStatus(fmt.Errorf("program %d: %w", in.GetId(), err))
	}
	defer r.Close()
	if err := stream.Send(&pb.EventsResponse{Map: mapDescription(o), RecordType: mapview.TypeName(opts.RecordType)}); err != nil {
		return err
	}
	var lost, dropped uint64
	for {
		recs, err := r.Next(ctx, eventBatch, eventFlush)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return toStatus(fmt.Errorf("program %d: %w", in.GetId(), err))
		}
		l, d := r.Lost(), r.Dropped()
		if len(recs) == 0 && l == lost && d == dropped {
			continue
		}
		lost, dropped = l, d
		out := &pb.EventsResponse{Lost: l, Dropped: d, Records: make([]*pb.EventRecord, len(recs))}
		for i, rec := range recs {
			out.Records[i] = &pb.EventRecord{Data: rec.Data, Json: rec.JSON, Cpu: uint32(rec.CPU)}
		}
		if err := stream.Send(out); err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return err
		}
	}
}

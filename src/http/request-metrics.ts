import { Counter, type Registry } from 'prom-client';

// The per-request metrics, counted in plain numbers per label set and read by the registry at
// scrape time. prom-client's Counter.inc and Histogram.observe check and hash their labels on
// every call, even through labels() children: measured at about 5 µs of a manifest GET's ~90 µs
// here. Scrapes see the same series, names, labels and buckets as prom-client's own classes give,
// and with workers the primary's AggregatorRegistry sums them like any other.

const durationBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The labels of one series: route class, method, status. */
export interface RequestLabels {
  route: string;
  method: string;
  status: string;
}

/** What one label set has counted so far. */
export interface RequestTally {
  readonly labels: RequestLabels;
  count: number;
  /** Observations per bucket, not cumulative; the last slot is above every bound (+Inf). */
  readonly buckets: number[];
  seconds: number;
  bytesIn: number;
  bytesOut: number;
}

/** One answered request into its tally (a few additions and a bucket search). */
export function countRequest(tally: RequestTally, seconds: number, bytesIn: number, bytesOut: number): void {
  tally.count++;
  tally.seconds += seconds;
  tally.bytesIn += bytesIn;
  tally.bytesOut += bytesOut;
  let bucket = 0;
  while (bucket < durationBuckets.length && seconds > durationBuckets[bucket]!) bucket++;
  tally.buckets[bucket]!++;
}

export function newTally(labels: RequestLabels): RequestTally {
  return { labels, count: 0, buckets: new Array<number>(durationBuckets.length + 1).fill(0), seconds: 0, bytesIn: 0, bytesOut: 0 };
}

/** Registers the request series on `registry`, read from `tallies` when scraped. */
export function registerRequestMetrics(registry: Registry, tallies: () => Iterable<RequestTally>): void {
  const registers = [registry];
  new Counter({
    name: 'wharf_http_requests_total', help: 'HTTP requests answered, by route class, method and status.', labelNames: ['route', 'method', 'status'], registers,
    collect() {
      this.reset();
      for (const tally of tallies()) this.inc({ ...tally.labels }, tally.count);
    },
  });
  const name = 'wharf_http_request_duration_seconds';
  const help = 'Time from request to the end of the response.';
  // A metric object as the registry reads them (prom-client's histogram format, labels spelled out).
  registry.registerMetric({
    name, help, type: 'histogram', aggregator: 'sum',
    get() {
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
      for (const { labels, count, buckets, seconds } of tallies()) {
        let cumulative = 0;
        durationBuckets.forEach((le, i) => {
          cumulative += buckets[i]!;
          values.push({ labels: { le, ...labels }, value: cumulative, metricName: `${name}_bucket` });
        });
        values.push(
          { labels: { le: '+Inf', ...labels }, value: count, metricName: `${name}_bucket` },
          { labels: { ...labels }, value: seconds, metricName: `${name}_sum` },
          { labels: { ...labels }, value: count, metricName: `${name}_count` },
        );
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    },
  } as unknown as Parameters<Registry['registerMetric']>[0]);
  // Byte counters by route class alone: label sets that share a route add up.
  const bytesCounter = (name: string, help: string, field: 'bytesIn' | 'bytesOut') => new Counter({
    name, help, labelNames: ['route'], registers,
    collect() {
      this.reset();
      for (const tally of tallies()) if (tally[field] > 0) this.inc({ route: tally.labels.route }, tally[field]);
    },
  });
  bytesCounter('wharf_http_request_body_bytes_total', 'Request body bytes received.', 'bytesIn');
  bytesCounter('wharf_http_response_body_bytes_total', 'Response body bytes sent.', 'bytesOut');
}

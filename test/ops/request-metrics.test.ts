import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { countRequest, newTally, registerRequestMetrics, type RequestLabels, type RequestTally } from '../../src/http/request-metrics.js';

// The request series are counted in plain numbers; a scrape must read exactly what prom-client's
// own Counter and Histogram would have exposed for the same requests, alone and summed over workers.

type Answered = [RequestLabels, number, number, number];
const answered: Answered[] = [
  [{ route: 'manifest', method: 'GET', status: '200' }, 0.0002, 0, 500],
  [{ route: 'manifest', method: 'GET', status: '200' }, 0.025, 0, 700], // on a bound: counted in its bucket
  [{ route: 'manifest', method: 'PUT', status: '201' }, 3, 900, 0],
  [{ route: 'other', method: 'OTHER', status: '404' }, 400, 0, 100], // above every bound
  [{ route: 'upload', method: 'PATCH', status: '202' }, 0.005, 5000, 0],
];

function withPromClient(requests: Answered[]): Registry {
  const registry = new Registry();
  const registers = [registry];
  const labelNames = ['route', 'method', 'status'];
  const count = new Counter({ name: 'wharf_http_requests_total', help: 'HTTP requests answered, by route class, method and status.', labelNames, registers });
  const time = new Histogram({ name: 'wharf_http_request_duration_seconds', help: 'Time from request to the end of the response.', labelNames, registers, buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] });
  const bytesIn = new Counter({ name: 'wharf_http_request_body_bytes_total', help: 'Request body bytes received.', labelNames: ['route'], registers });
  const bytesOut = new Counter({ name: 'wharf_http_response_body_bytes_total', help: 'Response body bytes sent.', labelNames: ['route'], registers });
  for (const [labels, seconds, received, sent] of requests) {
    count.inc({ ...labels });
    time.observe({ ...labels }, seconds);
    if (received) bytesIn.inc({ route: labels.route }, received);
    if (sent) bytesOut.inc({ route: labels.route }, sent);
  }
  return registry;
}

function withTallies(requests: Answered[]): Registry {
  const registry = new Registry();
  const tallies = new Map<string, RequestTally>();
  registerRequestMetrics(registry, () => tallies.values());
  for (const [labels, seconds, received, sent] of requests) {
    const key = `${labels.route} ${labels.method} ${labels.status}`;
    if (!tallies.has(key)) tallies.set(key, newTally(labels));
    countRequest(tallies.get(key)!, seconds, received, sent);
  }
  return registry;
}

test('request metrics: a scrape reads what prom-client\'s Counter and Histogram expose', async () => {
  const expected = await withPromClient(answered).metrics();
  assert.match(expected, 'wharf_http_request_duration_seconds_bucket{le="0.025",route="manifest",method="GET",status="200"} 2');
  assert.fixture(await withTallies(answered).metrics(), expected);
});

test('request metrics: summed over workers by AggregatorRegistry as prom-client\'s own are', async () => {
  const workers = [answered, answered.slice(2)];
  const aggregate = async (build: (requests: Answered[]) => Registry) => AggregatorRegistry.aggregate(await Promise.all(workers.map((requests) => build(requests).getMetricsAsJSON()))).metrics();
  const expected = await aggregate(withPromClient);
  assert.match(expected, 'wharf_http_requests_total{route="manifest",method="PUT",status="201"} 2');
  assert.fixture(await aggregate(withTallies), expected);
});

test.run();

import assert from "node:assert/strict";
import { test } from "node:test";
import { exactInstant, exactMillis, formatInstant, parseInstant } from "../../../src/cloudevents/timestamp.js";

test("timestamp - parseInstant applies the offset and keeps nanoseconds", () => {
  const rows: [string, { seconds: number; nanos: number } | undefined][] = [
    ["1970-01-01T00:00:00Z", { seconds: 0, nanos: 0 }],
    ["2024-05-06T05:08:09.123456789Z", { seconds: 1714972089, nanos: 123456789 }],
    ["2024-05-06T07:08:09.123456789+02:00", { seconds: 1714972089, nanos: 123456789 }],
    ["2024-05-06T04:38:09.1-00:30", { seconds: 1714972089, nanos: 100000000 }],
    ["2024-05-06t05:08:09.000000000100z", undefined], // a non-zero digit past the ninth
    ["2024-05-06t05:08:09.1234567890000z", { seconds: 1714972089, nanos: 123456789 }],
    ["1969-12-31T23:59:59.5Z", { seconds: -1, nanos: 500000000 }],
    ["0001-01-01T00:00:00Z", { seconds: -62135596800, nanos: 0 }],
    ["0050-03-01T00:00:00Z", { seconds: -60584198400, nanos: 0 }], // not 1950: years below 100 stay
    ["9999-12-31T23:59:59.999999999Z", { seconds: 253402300799, nanos: 999999999 }],
    ["0001-01-01T00:00:00+00:01", undefined], // before year 1 after the offset
    ["2016-12-31T23:59:60Z", undefined], // leap second: no instant in Timestamp
  ];
  for (const [s, want] of rows) assert.deepEqual(parseInstant(s), want, s);
});

test("timestamp - formatInstant writes UTC with 0, 3, 6 or 9 fraction digits", () => {
  assert.equal(formatInstant({ seconds: 0, nanos: 0 }), "1970-01-01T00:00:00Z");
  assert.equal(formatInstant({ seconds: 1714972089, nanos: 120000000 }), "2024-05-06T05:08:09.120Z");
  assert.equal(formatInstant({ seconds: 1714972089, nanos: 123400000 }), "2024-05-06T05:08:09.123400Z");
  assert.equal(formatInstant({ seconds: 1714972089, nanos: 1 }), "2024-05-06T05:08:09.000000001Z");
  assert.equal(formatInstant({ seconds: -62135596800, nanos: 0 }), "0001-01-01T00:00:00Z");
  assert.throws(() => formatInstant({ seconds: 253402300800, nanos: 0 }), RangeError);
  assert.throws(() => formatInstant({ seconds: 0, nanos: 1e9 }), RangeError);
});

test("timestamp - exactInstant only for strings that read back identically", () => {
  assert.deepEqual(exactInstant("2024-05-06T05:08:09.123456789Z"), { seconds: 1714972089, nanos: 123456789 });
  assert.deepEqual(exactInstant("2024-05-06T05:08:09Z"), { seconds: 1714972089, nanos: 0 });
  for (const s of [
    "2024-05-06T07:08:09.123456789+02:00",
    "2024-05-06T05:08:09.1Z",
    "2024-05-06t05:08:09Z",
    "2024-05-06T05:08:09.000Z",
    "2024-05-06T05:08:09.120000Z",
    "2024-05-06T05:08:09.123456000Z",
    "2024-05-06T05:08:09.12345Z",
    "2024-02-30T05:08:09Z",
    "2016-12-31T23:59:60Z",
  ]) {
    assert.equal(exactInstant(s), undefined, s);
  }
  // Whatever exactInstant accepts, formatInstant writes back exactly.
  for (const s of ["2024-02-29T00:00:00Z", "1969-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.000001Z", "0050-03-01T00:00:00.100Z", "2000-01-01T00:00:00.010Z"]) {
    const t = exactInstant(s);
    assert.ok(t, s);
    assert.equal(formatInstant(t), s);
    assert.deepEqual(t, parseInstant(s));
  }
});

test("timestamp - exactMillis only for the toISOString spelling", () => {
  assert.equal(exactMillis("2024-05-06T05:08:09.123Z"), 1714972089123);
  assert.equal(exactMillis("1969-12-31T23:59:59.999Z"), -1);
  for (const s of ["2024-05-06T05:08:09Z", "2024-05-06T05:08:09.1234Z", "2024-05-06T07:08:09.123+02:00", "2024-05-06T05:08:09.123z", "2016-12-31T23:59:60.000Z"]) {
    assert.equal(exactMillis(s), undefined, s);
  }
});

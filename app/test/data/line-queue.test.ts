import assert from "node:assert/strict";
import { test } from "node:test";
import { LineQueue, lineEnds } from "../../src/data/line-queue.ts";

const text = (data: Buffer) => data.toString("utf8");
const joined = (lines: string[]) => lines.map((l) => `${l}\n`).join("");

test("lines come out in order, across chunk boundaries, as UTF-8 with a newline each", () => {
  const queue = new LineQueue(64); // tiny chunks: most batches span several
  const lines = Array.from({ length: 50 }, (_, i) => `${i}\tzürich ✓ ${"x".repeat(i % 7)}`);
  for (const line of lines) queue.push(line);
  assert.equal(queue.length, 50);
  const first = queue.peek(20);
  assert.equal(first.lines, 20);
  assert.equal(text(first.data), joined(lines.slice(0, 20)));
  assert.equal(queue.length, 50, "peek leaves the lines queued");
  queue.drop(20);
  assert.equal(text(queue.peek(1000).data), joined(lines.slice(20)));
  queue.push("late");
  queue.drop(29);
  assert.deepEqual([queue.length, text(queue.peek(10).data)], [2, joined([lines[49]!, "late"])]);
  queue.drop(5);
  assert.deepEqual([queue.length, queue.peek(10).lines, queue.peek(10).data.length], [0, 0, 0]);
});

test("a line longer than a chunk gets a chunk of its own", () => {
  const queue = new LineQueue(16);
  const long = "é".repeat(100);
  queue.push("a");
  queue.push(long);
  queue.push("b");
  assert.equal(text(queue.takeAll().data), joined(["a", long, "b"]));
  assert.equal(queue.length, 0);
});

test("a peeked batch keeps its bytes while newer lines arrive; dropped chunks are reused", () => {
  const queue = new LineQueue(32);
  queue.push("one");
  queue.push("two");
  const batch = queue.peek(2);
  const lines = Array.from({ length: 20 }, (_, i) => `more ${i}`);
  for (const line of lines) queue.push(line);
  assert.equal(text(batch.data), "one\ntwo\n");
  queue.drop(2);
  for (let round = 0; round < 50; round++) {
    const more = Array.from({ length: 7 }, (_, i) => `round ${round} line ${i}`);
    for (const line of more) queue.push(line);
    lines.push(...more);
    const head = queue.peek(5);
    assert.equal(text(head.data), joined(lines.slice(0, 5)));
    queue.drop(5);
    lines.splice(0, 5);
  }
  assert.equal(text(queue.takeAll().data), joined(lines));
});

test("takeAll empties the queue; prepend puts the lines back in front, oldest first", () => {
  const queue = new LineQueue(32);
  for (const l of ["a", "b", "c"]) queue.push(l);
  const all = queue.takeAll();
  assert.deepEqual([all.lines, queue.length], [3, 0]);
  queue.push("d");
  queue.prepend(all.data);
  assert.equal(queue.length, 4);
  assert.equal(text(queue.peek(4).data), "a\nb\nc\nd\n");
  queue.drop(3);
  assert.equal(text(queue.peek(4).data), "d\n");
});

test("lineEnds finds each line's end", () => {
  assert.deepEqual(lineEnds(Buffer.from("ab\nc\n\nd\n")), [3, 5, 6, 8]);
  assert.deepEqual(lineEnds(Buffer.alloc(0)), []);
});

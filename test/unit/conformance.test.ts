import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agnhostUsers, compareVersions, listedTags } from '../conformance/images.js';
import { renderSummary, summarize } from '../conformance/report.js';

const LISTED = [
  'registry.k8s.io/e2e-test-images/agnhost:2.55',
  'registry.k8s.io/e2e-test-images/agnhost:2.66.1',
  'gcr.io/k8s-authenticated-test/agnhost:2.6',
  'registry.k8s.io/e2e-test-images/nginx:1.27.0-2',
  'registry.k8s.io/e2e-test-images/nginx:1.28.0-2',
  'registry.k8s.io/e2e-test-images/node-perf/npb-ep:1.6.0',
];

test('listedTags: the tags the suite names for one image of the e2e registry, no other registry', () => {
  assert.deepEqual(listedTags(LISTED, 'agnhost'), ['2.55', '2.66.1']);
  assert.deepEqual(listedTags(LISTED, 'nginx'), ['1.27.0-2', '1.28.0-2']);
  assert.deepEqual(listedTags(LISTED, 'node-perf/npb-ep'), ['1.6.0']);
  assert.deepEqual(listedTags(LISTED, 'kitten'), []);
});

test('compareVersions: by number, part by part (2.55 before 2.66.1 before 2.100)', () => {
  assert.deepEqual(['2.66.1', '2.100', '2.55', '2.66'].sort(compareVersions), [
    '2.55',
    '2.66',
    '2.66.1',
    '2.100',
  ]);
});

test("agnhostUsers: upstream's user 1000 and group 50000 added to the base's, the base's lines kept", () => {
  const { passwd, group } = agnhostUsers('root:x:0:0:root:/root:/bin/bash', 'root:x:0:\n');
  assert.deepEqual(passwd.split('\n'), [
    'root:x:0:0:root:/root:/bin/bash',
    'user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh',
    '',
  ]);
  assert.deepEqual(group.split('\n'), [
    'root:x:0:',
    'user-defined-in-image:x:1000:',
    'group-defined-in-image:x:50000:user-defined-in-image',
    '',
  ]);
});

const spec = (leaf: string, state: string, extra: object = {}) => ({
  ContainerHierarchyTexts: ['[sig-network] DNS'],
  LeafNodeText: leaf,
  LeafNodeType: 'It',
  State: state,
  RunTime: 2.4e9,
  ...extra,
});

test('summarize: counts specs only, selected from the pre-run stats, failures with their first lines', () => {
  const s = summarize('parallel', [
    {
      SuiteSucceeded: false,
      RunTime: 125.6e9,
      PreRunStats: { TotalSpecs: 7000, SpecsThatWillRun: 5 },
      SpecReports: [
        { LeafNodeText: '', LeafNodeType: 'SynchronizedBeforeSuite', State: 'passed', RunTime: 1e9 },
        spec('should resolve', 'passed'),
        spec('should answer', 'passed'),
        spec('should skip here', 'skipped'),
        spec('should fail', 'failed', {
          Failure: {
            Message: '\nexpected 3\n  got 2\n\nmore\nand more',
            Location: {
              FileName: '/go/pkg/mod/k8s.io/kubernetes@v1.37.2/test/e2e/network/dns.go',
              LineNumber: 42,
            },
          },
        }),
        spec('should not time out', 'timedout', {
          Failure: {
            Message: '',
            Location: { FileName: 'k8s.io/kubernetes@v1.37.2/test/e2e/network/dns.go', LineNumber: 7 },
          },
        }),
      ],
    },
  ]);
  assert.equal(s.selected, 5);
  assert.equal(s.passed, 2);
  assert.equal(s.failed, 2);
  assert.equal(s.skipped, 1);
  assert.equal(s.seconds, 126);
  assert.equal(s.succeeded, false);
  assert.deepEqual(s.failures[0], {
    spec: '[sig-network] DNS should fail',
    state: 'failed',
    reason: 'expected 3 | got 2 | more',
    location: 'test/e2e/network/dns.go:42',
    seconds: 2,
  });
  assert.equal(s.failures[1]?.reason, '(no message)');
  assert.equal(s.failures[1]?.location, 'test/e2e/network/dns.go:7', 'a -trimpath location too');
  const text = renderSummary(s);
  assert.match(text, /^parallel: 2 passed, 2 failed, 1 skipped of 5 selected in 2 min 6 s\n/);
  assert.match(
    text,
    /FAIL \(failed, 2 s\) \[sig-network\] DNS should fail\n +expected 3 \| got 2 \| more {2}\[test\/e2e\/network\/dns.go:42\]/,
  );
});

test('summarize: a failed suite-level node is a failure of the run, though no spec failed', () => {
  const s = summarize('serial', [
    {
      SuiteSucceeded: false,
      RunTime: 3e9,
      PreRunStats: { TotalSpecs: 7000, SpecsThatWillRun: 1 },
      SpecReports: [
        {
          LeafNodeText: '',
          LeafNodeType: 'SynchronizedBeforeSuite',
          State: 'failed',
          RunTime: 3e9,
          Failure: { Message: 'no nodes are Ready' },
        },
      ],
    },
  ]);
  assert.equal(s.failed, 0);
  assert.equal(s.skipped, 1);
  assert.equal(s.succeeded, false);
  assert.equal(s.failures[0]?.spec, '[SynchronizedBeforeSuite]');
});

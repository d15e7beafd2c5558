// Ginkgo's JSON report of one e2e.test run, summarised: what ran, what failed and why.
import { readFile } from 'node:fs/promises';

/** The parts of ginkgo v2's types.Report that the summary reads. */
interface GinkgoReport {
  SuiteSucceeded: boolean;
  RunTime: number;
  PreRunStats?: { TotalSpecs: number; SpecsThatWillRun: number };
  SpecReports?: {
    ContainerHierarchyTexts?: string[] | null;
    LeafNodeText: string;
    LeafNodeType: string;
    State: string;
    RunTime: number;
    Failure?: { Message?: string; Location?: { FileName?: string; LineNumber?: number } };
  }[];
}

export interface SpecFailure {
  spec: string;
  state: string;
  reason: string;
  location: string;
  seconds: number;
}

export interface PartSummary {
  /** the part's name: parallel or serial */
  part: string;
  /** specs the filter selected */
  selected: number;
  passed: number;
  failed: number;
  /** selected specs that skipped themselves (e2eskipper) or were never reached */
  skipped: number;
  seconds: number;
  failures: SpecFailure[];
  /** the suite's own verdict (false also when a suite-level node failed) */
  succeeded: boolean;
}

const FAILED = new Set(['failed', 'panicked', 'timedout', 'interrupted', 'aborted']);
const NANOS = 1e9;

/** The first non-empty lines of a failure message, joined: what a person reads first. */
function reason(message: string | undefined, lines = 3): string {
  const text = (message ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return text.slice(0, lines).join(' | ') || '(no message)';
}

/** Summarises the parsed report (ginkgo writes one Report per suite run: an array of one). */
export function summarize(part: string, reports: GinkgoReport[]): PartSummary {
  const summary: PartSummary = {
    part,
    selected: 0,
    passed: 0,
    failed: 0,
    skipped: 0,
    seconds: 0,
    failures: [],
    succeeded: true,
  };
  for (const r of reports) {
    summary.selected += r.PreRunStats?.SpecsThatWillRun ?? 0;
    summary.seconds += r.RunTime / NANOS;
    summary.succeeded &&= r.SuiteSucceeded;
    for (const s of r.SpecReports ?? []) {
      const spec = [...(s.ContainerHierarchyTexts ?? []), s.LeafNodeText].filter((t) => t !== '').join(' ');
      const isSpec = s.LeafNodeType === 'It';
      if (isSpec && s.State === 'passed') summary.passed++;
      if (FAILED.has(s.State)) {
        if (isSpec) summary.failed++;
        const loc = s.Failure?.Location;
        summary.failures.push({
          spec: isSpec ? spec : `[${s.LeafNodeType}] ${spec}`.trim(),
          state: s.State,
          reason: reason(s.Failure?.Message),
          location: loc?.FileName
            ? `${loc.FileName.replace(/^(.*\/)?k8s\.io\/kubernetes@[^/]+\//, '')}:${loc.LineNumber}`
            : '',
          seconds: Math.round(s.RunTime / NANOS),
        });
      }
    }
  }
  summary.seconds = Math.round(summary.seconds);
  summary.skipped = Math.max(0, summary.selected - summary.passed - summary.failed);
  return summary;
}

export async function readSummary(part: string, file: string): Promise<PartSummary> {
  return summarize(part, JSON.parse(await readFile(file, 'utf8')) as GinkgoReport[]);
}

const minutes = (s: number) => `${Math.floor(s / 60)} min ${s % 60} s`;

/** The lines printed after a part: one summary line, then each failure with its reason. */
export function renderSummary(s: PartSummary): string {
  const lines = [
    `${s.part}: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped of ${s.selected} selected in ${minutes(s.seconds)}`,
  ];
  for (const f of s.failures) {
    lines.push(`  FAIL (${f.state}, ${f.seconds} s) ${f.spec}`);
    lines.push(`       ${f.reason}${f.location ? `  [${f.location}]` : ''}`);
  }
  return lines.join('\n') + '\n';
}

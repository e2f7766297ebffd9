/**
 * CPU time and memory of a process from Linux /proc (the benchmarks run on Linux; elsewhere these
 * return null and the report says so). CPU seconds = utime + stime of every thread of the process
 * (worker threads included), in clock ticks of USER_HZ = 100 (proc(5)).
 */
import * as fs from "node:fs";

const USER_HZ = 100;

export function cpuSeconds(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / USER_HZ;
  } catch {
    return null;
  }
}

function statusField(pid: number, field: string): number | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Peak resident set size (VmHWM) in MiB. */
export function peakRssMiB(pid: number): number | null {
  return statusField(pid, "VmHWM");
}

export function rssMiB(pid: number): number | null {
  return statusField(pid, "VmRSS");
}

export function commandName(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return null;
  }
}

/** Every descendant of a process (children of all its threads, recursively). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    let tids: string[] = [];
    try {
      tids = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const tid of tids) {
      let children = "";
      try {
        children = fs.readFileSync(`/proc/${p}/task/${tid}/children`, "utf8");
      } catch {
        continue;
      }
      for (const c of children.split(/\s+/).filter(Boolean).map(Number)) {
        out.push(c);
        visit(c);
      }
    }
  };
  visit(pid);
  return out;
}

/**
 * A minimal ZIP writer (deflate, no library), used to measure the archive `pulumi up` uploads for
 * each Lambda function. It follows what the Pulumi engine does when it turns an AssetArchive into a
 * Lambda deployment package with Go's archive/zip: one deflated entry per regular file, no
 * directory entries, a data descriptor after each entry (Go's writer sets flag 0x8), the central
 * directory, then the end record. Deflate runs at level 6 (zlib's default, the level Go's
 * DefaultCompression maps to); the two deflate implementations differ by a few bytes per file, so
 * the size is within about 1% of the engine's, not byte-identical.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";

export interface ZipEntry {
  /** Path inside the archive, with forward slashes. */
  readonly name: string;
  readonly data: Buffer;
}

const LOCAL_HEADER = 0x04034b50;
const DATA_DESCRIPTOR = 0x08074b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
/** 1980-01-01 00:00 in MS-DOS date/time: archives are reproducible, as Pulumi's are. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

export function writeZip(entries: readonly ZipEntry[]): Buffer {
  if (entries.length > 0xffff) throw new RangeError("more than 65,535 entries needs ZIP64, which this writer does not implement");
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, "utf8");
    const compressed = zlib.deflateRawSync(entry.data, { level: 6 });
    const crc = zlib.crc32(entry.data) >>> 0;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the range spans ASCII to find any byte outside it
    const flags = 0x0008 | (/[^\x00-\x7f]/.test(entry.name) ? 0x0800 : 0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(LOCAL_HEADER, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(8, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    // CRC and sizes are zero here and follow in the data descriptor, as a streaming writer emits them.
    local.writeUInt16LE(name.length, 26);
    const descriptor = Buffer.alloc(16);
    descriptor.writeUInt32LE(DATA_DESCRIPTOR, 0);
    descriptor.writeUInt32LE(crc, 4);
    descriptor.writeUInt32LE(compressed.length, 8);
    descriptor.writeUInt32LE(entry.data.length, 12);
    chunks.push(local, name, compressed, descriptor);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(CENTRAL_HEADER, 0);
    // Version made by: 3 = Unix (so the external attributes below are a Unix mode), spec 2.0.
    header.writeUInt16LE((3 << 8) | 20, 4);
    header.writeUInt16LE(20, 6);
    header.writeUInt16LE(flags, 8);
    header.writeUInt16LE(8, 10);
    header.writeUInt16LE(DOS_TIME, 12);
    header.writeUInt16LE(DOS_DATE, 14);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(compressed.length, 20);
    header.writeUInt32LE(entry.data.length, 24);
    header.writeUInt16LE(name.length, 28);
    header.writeUInt32LE((0o100644 * 0x10000) >>> 0, 38);
    header.writeUInt32LE(offset, 42);
    central.push(header, name);
    offset += 30 + name.length + compressed.length + 16;
    if (offset > 0xffffffff) throw new RangeError("archive larger than 4 GiB needs ZIP64");
  }
  const centralSize = central.reduce((s, b) => s + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...chunks, ...central, end]);
}

/**
 * Every regular file under `dir`, named `<prefix>/<relative path>`. Symbolic links are skipped
 * (npm puts them only in `.bin` folders, which a Lambda never executes).
 */
export function filesUnder(dir: string, prefix: string): ZipEntry[] {
  const out: ZipEntry[] = [];
  const walk = (abs: string, rel: string) => {
    for (const d of fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const childAbs = path.join(abs, d.name);
      const childRel = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) walk(childAbs, childRel);
      else if (d.isFile()) out.push({ name: `${prefix}/${childRel}`, data: fs.readFileSync(childAbs) });
    }
  };
  walk(dir, "");
  return out;
}

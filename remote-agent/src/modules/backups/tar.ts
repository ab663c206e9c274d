import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';

/**
 * A minimal ustar writer and reader for the backup bundle (regular files with short names only), so a backup is one
 * file `tar tf` can list, and reading one never follows a link or writes outside the folder it is asked to.
 */
const BLOCK = 512;
const CHUNK = 1024 * 1024;

function header(name: string, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 99) throw new Error(`tar member name too long: ${name}`);
  const block = Buffer.alloc(BLOCK);
  const octal = (value: number, width: number): string => value.toString(8).padStart(width - 1, '0') + '\0';
  block.write(name, 0, 'utf8');
  block.write(octal(0o600, 8), 100);
  block.write(octal(0, 8), 108);
  block.write(octal(0, 8), 116);
  block.write(octal(size, 12), 124);
  block.write(octal(Math.floor(mtime / 1000), 12), 136);
  block.write('        ', 148);
  block.write('0', 156);
  block.write('ustar\u000000', 257);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

/** Writes `entries` (name in the archive, file on disk) into `target`, in order. */
export async function writeTar(target: string, entries: Array<{ name: string; file: string }>): Promise<void> {
  const out = await open(target, 'wx', 0o600);
  try {
    const buffer = Buffer.alloc(CHUNK);
    for (const entry of entries) {
      const info = await stat(entry.file);
      await out.write(header(entry.name, info.size, info.mtimeMs));
      const input = await open(entry.file, 'r');
      try {
        let copied = 0;
        while (copied < info.size) {
          const { bytesRead } = await input.read(buffer, 0, Math.min(CHUNK, info.size - copied), copied);
          if (bytesRead === 0) throw new Error(`${entry.file} shrank while it was archived`);
          await out.write(buffer.subarray(0, bytesRead));
          copied += bytesRead;
        }
      } finally {
        await input.close();
      }
      const pad = (BLOCK - (info.size % BLOCK)) % BLOCK;
      if (pad > 0) await out.write(Buffer.alloc(pad));
    }
    await out.write(Buffer.alloc(BLOCK * 2));
    await out.sync();
  } finally {
    await out.close();
  }
}

export interface TarMember {
  name: string;
  offset: number;
  size: number;
}

export class TarFormatError extends Error {}

/** The regular files of a tar, with where their bytes are. Anything else (links, folders) is refused. */
export async function readTarIndex(file: string): Promise<TarMember[]> {
  const input = await open(file, 'r');
  try {
    const { size: total } = await input.stat();
    const members: TarMember[] = [];
    const block = Buffer.alloc(BLOCK);
    let position = 0;
    while (position + BLOCK <= total) {
      await input.read(block, 0, BLOCK, position);
      if (block.every((byte) => byte === 0)) return members;
      const name = block.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
      const size = Number.parseInt(block.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
      const type = String.fromCharCode(block[156]!);
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
      const stored = Number.parseInt(block.subarray(148, 156).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
      if (!Number.isFinite(size) || size < 0 || sum !== stored)
        throw new TarFormatError('the file is not a tar archive (a header checksum is wrong)');
      if (type !== '0' && type !== '\0')
        throw new TarFormatError(`the archive has a member that is not a file: ${name}`);
      if (!/^[A-Za-z0-9._/-]+$/.test(name) || name.split('/').some((part) => part === '..' || part === ''))
        throw new TarFormatError(`the archive has a member with an unexpected name: ${name.slice(0, 100)}`);
      if (position + BLOCK + size > total) throw new TarFormatError('the archive is cut short');
      members.push({ name, offset: position + BLOCK, size });
      position += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    }
    throw new TarFormatError('the archive is cut short (no end marker)');
  } finally {
    await input.close();
  }
}

/** Copies one member's bytes to `target` (created new, 0600) and returns their SHA-256. */
export async function extractMember(file: string, member: TarMember, target: string): Promise<string> {
  const input = await open(file, 'r');
  const out = await open(target, 'wx', 0o600);
  const hash = createHash('sha256');
  try {
    const buffer = Buffer.alloc(CHUNK);
    let copied = 0;
    while (copied < member.size) {
      const { bytesRead } = await input.read(buffer, 0, Math.min(CHUNK, member.size - copied), member.offset + copied);
      if (bytesRead === 0) throw new TarFormatError('the archive is cut short');
      const chunk = buffer.subarray(0, bytesRead);
      hash.update(chunk);
      await out.write(chunk);
      copied += bytesRead;
    }
  } finally {
    await out.close();
    await input.close();
  }
  return hash.digest('hex');
}

export async function readMember(file: string, member: TarMember, max = 16 * 1024 * 1024): Promise<Buffer> {
  if (member.size > max) throw new TarFormatError(`${member.name} is larger than expected`);
  const input = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(member.size);
    await input.read(buffer, 0, member.size, member.offset);
    return buffer;
  } finally {
    await input.close();
  }
}

export async function hashMember(file: string, member: TarMember): Promise<string> {
  const input = await open(file, 'r');
  const hash = createHash('sha256');
  try {
    const buffer = Buffer.alloc(CHUNK);
    let read = 0;
    while (read < member.size) {
      const { bytesRead } = await input.read(buffer, 0, Math.min(CHUNK, member.size - read), member.offset + read);
      if (bytesRead === 0) throw new TarFormatError('the archive is cut short');
      hash.update(buffer.subarray(0, bytesRead));
      read += bytesRead;
    }
  } finally {
    await input.close();
  }
  return hash.digest('hex');
}

export async function hashFile(file: string): Promise<string> {
  const { size } = await stat(file);
  return hashMember(file, { name: file, offset: 0, size });
}

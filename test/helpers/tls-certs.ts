/**
 * A throwaway CA and a server certificate it signed for 127.0.0.1 (and `dnsNames`, for servers a test
 * names by host), made with openssl in `dir`.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  /** The CA's certificate (PEM file): what a client must trust. */
  caPath: string;
  /** The server's certificate and key (PEM files), for 127.0.0.1. */
  certPath: string;
  keyPath: string;
}

export async function makeCertificates(dir: string, name = 'strata test CA', dnsNames: readonly string[] = []): Promise<TestCertificates> {
  const o = (...args: string[]) => run('openssl', args, { cwd: dir });
  await o(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  );
  await o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
  await writeFile(join(dir, 'ext.cnf'), `subjectAltName=${['IP:127.0.0.1', ...dnsNames.map((n) => `DNS:${n}`)].join(',')}\n`);
  await o('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf');
  return { caPath: join(dir, 'ca.pem'), certPath: join(dir, 'srv.pem'), keyPath: join(dir, 'srv.key') };
}

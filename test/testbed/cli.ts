// `npm run testbed`: start the test bed, print how to use it, wait for Ctrl-C, clean up.
import { mintToken, startTestbed } from './index.js';

const SCOPE = 'storage.read:/ storage.create:/ storage.modify:/';
const LIFETIME = 12 * 3600;

async function main(): Promise<void> {
  const t0 = Date.now();
  const tb = await startTestbed();
  let stopping = false;
  const shutdown = (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${why}: stopping the test bed...\n`);
    tb.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`testbed: cleanup failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => shutdown(sig));

  const token = await mintToken(tb, { scope: SCOPE, expiresIn: LIFETIME });
  const { a, b } = tb.servers;
  const lines = [
    `Petrel test bed up in ${Date.now() - t0} ms (state: ${tb.root}, servers run as uid ${a.uid})`,
    '',
    `  server a    ${a.url}    data ${a.dataDir}    log ${a.logFile}`,
    `  server b    ${b.url}    data ${b.dataDir}    log ${b.logFile}`,
    `  issuer      ${tb.issuer.url}    log ${tb.issuer.logFile}`,
    `  idp         ${tb.idp.url}    (OpenID provider: device flow, refresh, token exchange)    log ${tb.idp.logFile}`,
    `  CA file     ${tb.caFile}    (PETREL_CA_FILE; davix --capath / X509_CERT_DIR: ${tb.caDir})`,
    `  audience    ${tb.audience} (or the server URL)`,
    `  info        ${tb.root}/testbed.json`,
    '',
    `Token (${SCOPE}, aud ${tb.audience}, valid ${LIFETIME / 3600} h):`,
    '',
    `export PETREL_CA_FILE=${tb.caFile}`,
    `export T=${token}`,
    '',
    'Try (header names are case-sensitive for XRootD):',
    `  echo hello | curl --cacert $PETREL_CA_FILE -H "Authorization: Bearer $T" -T - ${a.url}/hello.txt`,
    `  curl --cacert $PETREL_CA_FILE -H "Authorization: Bearer $T" ${a.url}/hello.txt`,
    `  curl -N --cacert $PETREL_CA_FILE -X COPY -H "Source: ${a.url}/hello.txt" -H "Authorization: Bearer $T" \\`,
    `       -H "TransferHeaderAuthorization: Bearer $T" -H "Credential: none" ${b.url}/hello.txt`,
    '',
    'Ctrl-C stops everything and removes the state dir (PETREL_KEEP_TESTBED=1 keeps it).',
    '',
  ];
  process.stdout.write(lines.join('\n'));
  // Stay alive until a signal arrives.
  setInterval(() => undefined, 1 << 30);
}

main().catch((e: unknown) => {
  process.stderr.write(`testbed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});

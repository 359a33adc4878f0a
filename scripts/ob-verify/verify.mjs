#!/usr/bin/env node
// Independent, offline verifier for W3C Verifiable Credentials secured with a
// Data Integrity proof (DataIntegrityProof + eddsa-rdfc-2022), built only on
// Digital Bazaar's reference libraries. See README.md next to this file.
//
// usage: node verify.mjs --credential FILE [--doc URL=FILE]... [--contexts DIR]
//                        [--no-issuer-check]
//
// stdout: one JSON line {"verified": bool, "revoked": bool|null, "errors": [...]}
// exit:   0 verified and not revoked, 1 verification failed,
//         2 verified but revoked, 3 usage error.
import {readFileSync, existsSync, statSync} from 'node:fs';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';

import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from
  '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import * as DidKey from '@digitalbazaar/did-method-key';
import {checkStatus as checkBitstringStatus} from
  '@digitalbazaar/vc-bitstring-status-list';
import jsigs from 'jsonld-signatures';

const {purposes: {AssertionProofPurpose}} = jsigs;

// Belt and braces: every library call below gets our offline documentLoader,
// but make sure nothing can fall back to fetching over the network.
globalThis.fetch = async url => {
  throw new Error(`network access is disabled (attempted fetch of "${url}")`);
};

const HERE = dirname(fileURLToPath(import.meta.url));
const DEFAULT_CONTEXTS_DIR =
  resolve(HERE, '../../crates/accolade-openbadges/contexts');

// URL -> file in the contexts directory, exactly as listed in its
// PROVENANCE.md. Nothing else is ever served as a JSON-LD context.
const CONTEXT_FILES = new Map([
  ['https://www.w3.org/ns/credentials/v2', 'credentials-v2.jsonld'],
  ['https://www.w3.org/2018/credentials/v1', 'credentials-v1.jsonld'],
  ['https://www.w3.org/ns/credentials/examples/v2',
    'credentials-examples-v2.jsonld'],
  ['https://www.w3.org/ns/credentials/undefined-terms/v2',
    'credentials-undefined-terms-v2.jsonld'],
  ['https://w3id.org/security/data-integrity/v2', 'data-integrity-v2.jsonld'],
  ['https://w3id.org/security/data-integrity/v1', 'data-integrity-v1.jsonld'],
  ['https://w3id.org/security/multikey/v1', 'multikey-v1.jsonld'],
  ['https://www.w3.org/ns/did/v1', 'did-v1.jsonld'],
  ['https://w3id.org/vc/status-list/2021/v1', 'status-list-2021-v1.jsonld'],
  ['https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json',
    'ob-v3p0-3.0.3.jsonld'],
  ['https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json',
    'ob-v3p0-3.0.2.jsonld'],
  ['https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.1.json',
    'ob-v3p0-3.0.1.jsonld'],
  // OB 3.0.0 was published as .../v3p0/context.json (see PROVENANCE.md)
  ['https://purl.imsglobal.org/spec/ob/v3p0/context.json',
    'ob-v3p0-3.0.0.jsonld'],
]);

// verification relationships a DID / controller document may embed methods in
const VERIFICATION_RELATIONSHIPS = [
  'verificationMethod', 'assertionMethod', 'authentication',
  'capabilityInvocation', 'capabilityDelegation', 'keyAgreement'
];

const USAGE =
  'usage: node verify.mjs --credential FILE [--doc URL=FILE]... ' +
  '[--contexts DIR] [--no-issuer-check]';

class UsageError extends Error {}

function emit({verified, revoked, errors}, code) {
  process.stdout.write(JSON.stringify({verified, revoked, errors}) + '\n');
  process.exitCode = code;
}

function readJson(file, what) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch(e) {
    throw new UsageError(`cannot read ${what} "${file}": ${e.message}`);
  }
  try {
    return JSON.parse(text);
  } catch(e) {
    const err = new Error(`${what} "${file}" is not valid JSON: ${e.message}`);
    err.badJson = true;
    throw err;
  }
}

// "URL=FILE": a URL may itself contain "=", so take the first "=" after which
// the remainder names an existing file; fall back to the last "=".
function splitDocArg(arg) {
  const positions = [];
  for(let i = arg.indexOf('='); i !== -1; i = arg.indexOf('=', i + 1)) {
    positions.push(i);
  }
  if(positions.length === 0) {
    throw new UsageError(`--doc expects URL=FILE, got "${arg}"`);
  }
  let at = positions.find(i => existsSync(arg.slice(i + 1)));
  if(at === undefined) {
    at = positions[positions.length - 1];
  }
  const url = arg.slice(0, at);
  const file = arg.slice(at + 1);
  if(!url || !file) {
    throw new UsageError(`--doc expects URL=FILE, got "${arg}"`);
  }
  return {url, file};
}

function parseArgs(argv) {
  const opts = {
    credential: null, docs: [], contexts: DEFAULT_CONTEXTS_DIR,
    issuerCheck: true
  };
  for(let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if(i + 1 >= argv.length) {
        throw new UsageError(`${arg} needs a value`);
      }
      return argv[++i];
    };
    if(arg === '--credential') {
      opts.credential = value();
    } else if(arg.startsWith('--credential=')) {
      opts.credential = arg.slice('--credential='.length);
    } else if(arg === '--doc') {
      opts.docs.push(splitDocArg(value()));
    } else if(arg === '--contexts') {
      opts.contexts = resolve(value());
    } else if(arg.startsWith('--contexts=')) {
      opts.contexts = resolve(arg.slice('--contexts='.length));
    } else if(arg === '--no-issuer-check') {
      opts.issuerCheck = false;
    } else if(arg === '-h' || arg === '--help') {
      throw new UsageError('help requested');
    } else {
      throw new UsageError(`unknown argument "${arg}"`);
    }
  }
  if(!opts.credential) {
    throw new UsageError('--credential FILE is required');
  }
  if(!(existsSync(opts.contexts) && statSync(opts.contexts).isDirectory())) {
    throw new UsageError(`contexts directory "${opts.contexts}" not found`);
  }
  return opts;
}

// Resolve a possibly relative method id ("#key-1") against the document id.
function absoluteId(id, docId) {
  if(typeof id !== 'string') {
    return id;
  }
  if(id.startsWith('#') && typeof docId === 'string') {
    return docId.split('#')[0] + id;
  }
  return id;
}

function findVerificationMethod(doc, methodUrl) {
  for(const rel of VERIFICATION_RELATIONSHIPS) {
    const values = [].concat(doc[rel] ?? []);
    for(const method of values) {
      if(method && typeof method === 'object' &&
        absoluteId(method.id, doc.id) === methodUrl) {
        return {...method, id: methodUrl};
      }
    }
  }
  return null;
}

function buildDocumentLoader({contextsDir, docs}) {
  const didKeyDriver = DidKey.driver();
  didKeyDriver.use({
    multibaseMultikeyHeader: 'z6Mk',
    fromMultibase: Ed25519Multikey.from
  });
  const contextCache = new Map();

  function loadContext(url) {
    if(!contextCache.has(url)) {
      const file = join(contextsDir, CONTEXT_FILES.get(url));
      let document;
      try {
        document = JSON.parse(readFileSync(file, 'utf8'));
      } catch(e) {
        throw new Error(
          `documentLoader: cannot load context "${url}" from "${file}": ` +
          e.message);
      }
      contextCache.set(url, document);
    }
    return contextCache.get(url);
  }

  async function resolveBase(base) {
    if(docs.has(base)) {
      return docs.get(base);
    }
    if(base.startsWith('did:key:')) {
      return didKeyDriver.get({did: base});
    }
    return null;
  }

  return async function documentLoader(url) {
    if(typeof url !== 'string') {
      throw new Error(`documentLoader: URL must be a string, got ${url}`);
    }
    const result = document => ({contextUrl: null, documentUrl: url, document});

    if(CONTEXT_FILES.has(url)) {
      return result(loadContext(url));
    }
    // exact match first (a --doc may name a full URL, fragment included)
    if(docs.has(url)) {
      return result(docs.get(url));
    }
    const hash = url.indexOf('#');
    const base = hash === -1 ? url : url.slice(0, hash);
    const fragment = hash === -1 ? '' : url.slice(hash + 1);

    let baseDoc;
    try {
      baseDoc = await resolveBase(base);
    } catch(e) {
      throw new Error(
        `documentLoader: cannot resolve "${base}": ${e.message}`);
    }
    if(!baseDoc) {
      throw new Error(
        `documentLoader: refusing to fetch "${url}" (offline; pass it with ` +
        '--doc URL=FILE)');
    }
    if(!fragment) {
      return result(baseDoc);
    }
    // A verification method URL: return the method node, framed the way
    // Digital Bazaar's DID loaders do it (the method object plus the
    // controller document's @context).
    const method = findVerificationMethod(baseDoc, url);
    if(!method) {
      throw new Error(
        `documentLoader: verification method "${url}" not found in the ` +
        `document for "${base}"`);
    }
    return result({'@context': method['@context'] ?? baseDoc['@context'],
      ...method});
  };
}

function errorMessages(error, seen = new Set()) {
  if(!error || seen.has(error)) {
    return [];
  }
  seen.add(error);
  const out = [];
  if(Array.isArray(error.errors) && error.errors.length > 0) {
    for(const e of error.errors) {
      out.push(...errorMessages(e, seen));
    }
  } else {
    let message = String(error.message ?? error);
    // jsonld.js safe-mode errors carry the real reason in details.event
    const event = error.details?.event;
    if(event && typeof event === 'object') {
      const extra = [event.code, event.message].filter(Boolean).join(': ');
      const more = event.details ? ` ${JSON.stringify(event.details)}` : '';
      message += ` (${extra}${more})`;
    } else if(error.details?.url) {
      message += ` (url: ${error.details.url})`;
    }
    out.push(message);
  }
  if(error.cause) {
    for(const m of errorMessages(error.cause, seen)) {
      if(!out.includes(m)) {
        out.push(`caused by: ${m}`);
      }
    }
  }
  return out;
}

function statusEntries(credential) {
  const cs = credential.credentialStatus;
  if(!cs) {
    return [];
  }
  return (Array.isArray(cs) ? cs : [cs]).filter(e => e && typeof e === 'object');
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch(e) {
    if(e instanceof UsageError) {
      process.stderr.write(`${e.message}\n${USAGE}\n`);
      return emit({verified: false, revoked: null, errors: [e.message]}, 3);
    }
    throw e;
  }

  let credential;
  const docs = new Map();
  try {
    for(const {url, file} of opts.docs) {
      docs.set(url, readJson(file, `--doc ${url}`));
    }
    credential = readJson(opts.credential, 'credential');
  } catch(e) {
    if(e instanceof UsageError || !e.badJson ||
      !e.message.startsWith('credential')) {
      process.stderr.write(`${e.message}\n${USAGE}\n`);
      return emit({verified: false, revoked: null, errors: [e.message]}, 3);
    }
    return emit({verified: false, revoked: null, errors: [e.message]}, 1);
  }

  const documentLoader = buildDocumentLoader({
    contextsDir: opts.contexts, docs
  });
  const suite = new DataIntegrityProof({
    cryptosuite: eddsaRdfc2022CryptoSuite
  });
  // Default: vc's CredentialIssuancePurpose = proofPurpose "assertionMethod"
  // AND the credential's issuer must be the verification method's controller.
  // --no-issuer-check: plain AssertionProofPurpose (assertionMethod only).
  const purpose = opts.issuerCheck ?
    new vc.CredentialIssuancePurpose() : new AssertionProofPurpose();

  // Revocation: BitstringStatusListEntry with statusPurpose "revocation" whose
  // status list credential was given with --doc. The list credential's own
  // proof is verified (same suite, same offline loader) before it is read.
  let revoked = null;
  const checkStatus = async () => {
    const entries = statusEntries(credential).filter(e =>
      e.type === 'BitstringStatusListEntry' &&
      e.statusPurpose === 'revocation' &&
      docs.has(e.statusListCredential));
    if(entries.length === 0) {
      return {verified: true};
    }
    const result = await checkBitstringStatus({
      credential: {...credential, credentialStatus: entries},
      documentLoader,
      suite,
      verifyBitstringStatusListCredential: true,
      verifyMatchingIssuers: true
    });
    if(result.verified) {
      const unchecked = statusEntries(credential).some(e =>
        e.type === 'BitstringStatusListEntry' &&
        e.statusPurpose === 'revocation' &&
        !docs.has(e.statusListCredential));
      if(result.results.some(r => r.status === true)) {
        revoked = true;
      } else {
        revoked = unchecked ? null : false;
      }
    }
    return result;
  };

  let result;
  try {
    result = await vc.verifyCredential({
      credential, suite, purpose, documentLoader, checkStatus
    });
  } catch(e) {
    result = {verified: false, error: e};
  }

  const errors = [];
  if(!result.verified) {
    if(result.error) {
      errors.push(...errorMessages(result.error));
    }
    for(const r of result.results ?? []) {
      if(!r.verified && r.error) {
        for(const m of errorMessages(r.error)) {
          if(!errors.includes(m)) {
            errors.push(m);
          }
        }
      }
    }
    if(result.statusResult && !result.statusResult.verified) {
      errors.push(...errorMessages(result.statusResult.error)
        .map(m => `status: ${m}`));
    }
    if(errors.length === 0) {
      errors.push('verification failed');
    }
    return emit({verified: false, revoked: null, errors}, 1);
  }
  return emit({verified: true, revoked, errors}, revoked === true ? 2 : 0);
}

main().catch(e => {
  emit({verified: false, revoked: null,
    errors: [`internal error: ${e?.stack ?? e}`]}, 1);
});

#!/usr/bin/env node
// Validates a crate folder as ferry's tests need it: node validate.js DIR
// prints {"errors": [...], "warnings": [...]} and exits 1 when there are
// errors. Structure comes from npm's ro-crate validator (v3); the files
// check is ferry's own: every File entity is a file in DIR (its @id is a
// percent-encoded relative path) and every file in DIR is an entity.
'use strict';
const fs = require('fs');
const path = require('path');
const { Validator } = require('ro-crate/lib/validator');

// ferry writes RO-Crate 1.1, whose context the validator fetches from
// w3id.org. Tests run offline: the 1.1 context is then resolved with the
// RO-Crate 1.2 context the package carries (1.2 only added terms; every
// term ferry writes maps to the same IRI in both).
const CONTEXT_11 = 'https://w3id.org/ro/crate/1.1/context';
const context12 = require('ro-crate/lib/context.json')['@context'];

async function main() {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node validate.js CRATE_DIR');
    process.exit(2);
  }
  const raw = fs.readFileSync(path.join(dir, 'ro-crate-metadata.json'), 'utf8');
  // The validator fetches the context URL; offline that is a warning,
  // printed to stderr by the library.
  const v = new Validator();
  v.parseJSON(raw);
  if (v.crate && !v.crate.__contextCache[CONTEXT_11]) v.crate.__contextCache[CONTEXT_11] = context12;
  await v.validate();
  const results = v.results;
  const errors = results.filter(r => r.status === 'error').map(r => `${r.id}: ${r.message}`);
  const warnings = results.filter(r => r.status === 'warning').map(r => `${r.id}: ${r.message}`);

  const crate = JSON.parse(raw);
  // Every property and type used must be a term of the context: an unknown
  // one would be silently dropped by JSON-LD processors.
  if (v.crate) {
    for (const e of crate['@graph']) {
      for (const k of Object.keys(e)) {
        if (k.startsWith('@')) continue;
        if (!v.crate.resolveTerm(k)) errors.push(`unknownTerm: ${e['@id']} uses ${k}, not in the context`);
      }
      for (const t of [].concat(e['@type'] || [])) {
        if (!v.crate.resolveTerm(t)) errors.push(`unknownType: ${e['@id']} has type ${t}, not in the context`);
      }
    }
  }
  const described = new Set();
  for (const e of crate['@graph']) {
    const types = [].concat(e['@type'] || []);
    if (!types.includes('File')) continue;
    const rel = decodeURIComponent(String(e['@id']).replace(/^\.\//, ''));
    described.add(rel);
    const p = path.join(dir, ...rel.split('/'));
    if (!fs.existsSync(p) || !fs.statSync(p).isFile()) {
      errors.push(`fileMissing: File entity ${e['@id']} is not a file in the crate`);
    }
  }
  for (const f of fs.readdirSync(dir, { recursive: true })) {
    const rel = f.split(path.sep).join('/');
    if (rel === 'ro-crate-metadata.json' || fs.statSync(path.join(dir, f)).isDirectory()) continue;
    if (!described.has(rel)) errors.push(`fileNotDescribed: ${rel} is in the crate but has no File entity`);
  }
  process.stdout.write(JSON.stringify({ errors, warnings }) + '\n');
  process.exit(errors.length ? 1 : 0);
}

main().catch(err => { console.error(err); process.exit(2); });

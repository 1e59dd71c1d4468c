// A local SMSC for the SMPP adapter's tests and benchmark, on node-smpp.
//
// Usage: node smsc.js [--port N] [--control-port N]   (or SMSC_PORT,
// SMSC_CONTROL_PORT; 0 picks a free port). Prints one JSON line with the
// ports once listening, then serves SMPP on 127.0.0.1 and a small HTTP
// control API on 127.0.0.1. With SMSC_TLS_KEY and SMSC_TLS_CERT (paths of
// PEM files) it serves SMPP over TLS instead. The control API:
//
//   GET  /state   everything received: binds, submit_sm (raw short_message
//                 in hex), deliver_sm_resp, unbinds, and the most submit_sm
//                 that were outstanding at once
//   POST /config  change behaviour (JSON, merged): idBase "dec"|"hex",
//                 submitDelayMs, throttle (answer the next N submits with
//                 ESME_RTHROTTLED), refuse {destination: command_status},
//                 receipts, receiptDelayMs, receiptTextIdBase "same"|"dec"|"hex",
//                 receiptTlv, receiptBeforeResp, failSegments [UDH sequence
//                 numbers whose receipt says UNDELIV], dropAfter (close every
//                 connection without answering once N more submits arrived)
//   POST /mo      send a text from a handset: {source, destination, segments:
//                 [text, ...], coding "gsm"|"ucs2", concat "udh"|"sar", ref,
//                 only [segment numbers to send, for the others later]}
//   POST /drop    close every connection now
//   POST /reset   forget the records and restore the default behaviour
'use strict';

const fs = require('fs');
const http = require('http');
const smpp = require('smpp');
const defs = require('smpp/lib/defs');

// Keep submit_sm's short_message as raw bytes: the tests check the octets
// the adapter wrote, not node-smpp's reading of them.
delete defs.commands.submit_sm.params.short_message.filter;

function argument(name, envName) {
  const index = process.argv.indexOf(name);
  if (index >= 0) return Number(process.argv[index + 1]);
  return Number(process.env[envName] || 0);
}

const DEFAULTS = {
  idBase: 'dec',
  submitDelayMs: 0,
  throttle: 0,
  refuse: {},
  receipts: true,
  receiptDelayMs: 0,
  receiptTextIdBase: 'same',
  receiptTlv: true,
  receiptBeforeResp: false,
  failSegments: [],
  dropAfter: null,
};

let config = { ...DEFAULTS };
let records;
let nextId = 1000000;
let outstanding = 0;
let seenSinceDrop = 0;
const sessions = new Set();
const timers = new Set();

function reset() {
  config = { ...DEFAULTS };
  records = {
    binds: [],
    submits: [],
    deliverResps: [],
    unbinds: 0,
    enquireLinks: 0,
    maxOutstanding: 0,
  };
  outstanding = 0;
  seenSinceDrop = 0;
}
reset();

function later(delay, fn) {
  if (!delay) return setImmediate(fn);
  const timer = setTimeout(() => {
    timers.delete(timer);
    fn();
  }, delay);
  timers.add(timer);
  return timer;
}

function formatId(number, base) {
  return base === 'hex' ? number.toString(16) : String(number);
}

function udhSequence(esmClass, raw) {
  if (!(esmClass & 0x40) || raw.length < 6) return 1;
  if (raw[1] === 0x00) return raw[5];
  if (raw[1] === 0x08) return raw[6];
  return 1;
}

function sendReceipt(session, number, idText, record) {
  const textBase = config.receiptTextIdBase === 'same' ? config.idBase : config.receiptTextIdBase;
  const failed = config.failSegments.includes(record.segment);
  const stat = failed ? 'UNDELIV' : 'DELIVRD';
  const textId = textBase === 'dec' ? String(number).padStart(10, '0') : formatId(number, textBase);
  const text = `id:${textId} sub:001 dlvrd:${failed ? '000' : '001'} submit date:2601010000 ` +
    `done date:2601010000 stat:${stat} err:${failed ? '001' : '000'} text:`;
  const fields = {
    source_addr: record.destination,
    destination_addr: record.source,
    esm_class: 0x04,
    short_message: Buffer.from(text, 'ascii'),
  };
  if (config.receiptTlv) {
    fields.receipted_message_id = idText;
    fields.message_state = failed ? 5 : 2;
  }
  session.deliver_sm(fields, (resp) => {
    records.deliverResps.push({ kind: 'receipt', id: idText, status: resp.command_status });
  });
}

function onSubmit(session, pdu) {
  outstanding += 1;
  records.maxOutstanding = Math.max(records.maxOutstanding, outstanding);
  const raw = pdu.short_message;
  const record = {
    sequence: pdu.sequence_number,
    source: pdu.source_addr,
    sourceTon: pdu.source_addr_ton,
    destination: pdu.destination_addr,
    esmClass: pdu.esm_class,
    dataCoding: pdu.data_coding,
    registeredDelivery: pdu.registered_delivery,
    shortMessage: Buffer.isBuffer(raw) ? raw.toString('hex') : '',
    segment: Buffer.isBuffer(raw) ? udhSequence(pdu.esm_class, raw) : 1,
    status: null,
    messageId: null,
  };
  records.submits.push(record);

  if (config.dropAfter !== null) {
    seenSinceDrop += 1;
    if (seenSinceDrop >= config.dropAfter) {
      config.dropAfter = null;
      setImmediate(dropAll);
      return;
    }
  }

  let status = 0;
  if (config.throttle > 0) {
    config.throttle -= 1;
    status = defs.errors.ESME_RTHROTTLED;
  } else if (config.refuse[pdu.destination_addr] !== undefined) {
    status = config.refuse[pdu.destination_addr];
  }
  const delay = status ? 0 : config.submitDelayMs;
  const number = nextId++;
  const idText = formatId(number, config.idBase);

  later(delay, () => {
    if (!sessions.has(session)) return;
    outstanding -= 1;
    record.status = status;
    if (status) {
      session.send(pdu.response({ command_status: status }));
      return;
    }
    record.messageId = idText;
    if (config.receipts && config.receiptBeforeResp) {
      sendReceipt(session, number, idText, record);
    }
    session.send(pdu.response({ message_id: idText }));
    if (config.receipts && !config.receiptBeforeResp) {
      later(config.receiptDelayMs, () => {
        if (sessions.has(session)) sendReceipt(session, number, idText, record);
      });
    }
  });
}

function dropAll() {
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  for (const session of sessions) session.destroy();
  sessions.clear();
  outstanding = 0;
}

const tlsOptions = process.env.SMSC_TLS_KEY && process.env.SMSC_TLS_CERT
  ? { key: fs.readFileSync(process.env.SMSC_TLS_KEY), cert: fs.readFileSync(process.env.SMSC_TLS_CERT) }
  : {};

const server = smpp.createServer(tlsOptions, (session) => {
  session.on('error', () => session.destroy());
  session.on('bind_transceiver', (pdu) => {
    records.binds.push({
      systemId: pdu.system_id,
      password: pdu.password,
      systemType: pdu.system_type,
      interfaceVersion: pdu.interface_version,
    });
    sessions.add(session);
    session.send(pdu.response({ system_id: 'TESTSMSC' }));
  });
  session.on('close', () => sessions.delete(session));
  session.on('submit_sm', (pdu) => onSubmit(session, pdu));
  session.on('enquire_link', (pdu) => {
    records.enquireLinks += 1;
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    records.unbinds += 1;
    session.send(pdu.response());
    sessions.delete(session);
    session.close();
  });
});

function encodeSegment(text, coding) {
  return coding === 'ucs2' ? Buffer.from(text, 'utf16le').swap16() : defs.encodings.ASCII.encode(text);
}

function sendMo(body) {
  const session = [...sessions][0];
  if (!session) return false;
  const segments = body.segments;
  const total = segments.length;
  const ref = body.ref === undefined ? 7 : body.ref;
  const dataCoding = body.coding === 'ucs2' ? 0x08 : 0x00;
  segments.forEach((text, index) => {
    if (body.only && !body.only.includes(index + 1)) return;
    let message = encodeSegment(text, body.coding);
    const fields = {
      source_addr_ton: 1,
      source_addr: body.source,
      dest_addr_ton: 1,
      destination_addr: body.destination,
      data_coding: dataCoding,
      esm_class: 0,
    };
    if (total > 1 && body.concat === 'sar') {
      fields.sar_msg_ref_num = ref;
      fields.sar_total_segments = total;
      fields.sar_segment_seqnum = index + 1;
    } else if (total > 1) {
      fields.esm_class = 0x40;
      message = Buffer.concat([Buffer.from([5, 0, 3, ref, total, index + 1]), message]);
    }
    fields.short_message = message;
    session.deliver_sm(fields, (resp) => {
      records.deliverResps.push({ kind: 'mo', segment: index + 1, status: resp.command_status });
    });
  });
  return true;
}

const control = http.createServer((request, response) => {
  let data = '';
  request.on('data', (chunk) => { data += chunk; });
  request.on('end', () => {
    const body = data ? JSON.parse(data) : {};
    let result = { ok: true };
    if (request.method === 'GET' && request.url === '/state') {
      result = { ...records, bound: sessions.size, config };
    } else if (request.url === '/config') {
      config = { ...config, ...body };
      seenSinceDrop = 0;
    } else if (request.url === '/mo') {
      result = { ok: sendMo(body) };
    } else if (request.url === '/drop') {
      dropAll();
    } else if (request.url === '/reset') {
      reset();
    } else {
      response.writeHead(404);
      response.end();
      return;
    }
    response.writeHead(200, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify(result));
  });
});

server.listen(argument('--port', 'SMSC_PORT'), '127.0.0.1', () => {
  control.listen(argument('--control-port', 'SMSC_CONTROL_PORT'), '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({
      smpp: server.address().port,
      control: control.address().port,
    }) + '\n');
  });
});

process.on('SIGTERM', () => process.exit(0));

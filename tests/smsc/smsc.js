// The SMSC of the delivery tests: the npm `smpp` package's SMPP server (node-smpp), with a
// small HTTP control port. It is a real SMPP 3.4 peer for Kanal's ESME: it authenticates
// bind_transceiver, answers enquire_link and unbind, acknowledges every submit_sm with a
// message id, sends SMSC delivery receipts as deliver_sm (esm_class 0x04) whose text is
// `id:... sub:001 dlvrd:... submit date:... done date:... stat:... err:... text:...` with
// the receipted_message_id / message_state TLVs (SMPP 3.4 §5.3.2.12, §5.2.28) and the
// submitter's user_message_reference, and keeps a receipt until an ESME acknowledges it
// (a receipt for a dropped link is sent again on the next bind, as SMSCs do).
//
//   node smsc.js --port P --control-port C --log received.jsonl [--system-id kanal
//                --password secret]
//
// Control (HTTP, loopback): GET /received (this process's submit_sm, JSON), POST /drop
// (destroy every link), POST /throttle?count=N (answer the next N submit_sm with
// ESME_RTHROTTLED), POST /stall?count=N (take the next N submit_sm and never answer them),
// POST /outcome?destination=4790000001&stat=UNDELIV&err=001,
// POST /receipts?tlvs=0|1&hold=0|1 (text-only receipts; hold receipts until hold=0),
// POST /mo?source=4791234567&destination=2222&text=... (a customer's own SMS to the bound
// ESME: deliver_sm, esm_class 0, UCS-2; sent like a receipt, again until acknowledged).
// Every accepted submit_sm is also appended to --log, one JSON object a line, so a test can
// count what the SMSC received across its restarts.
'use strict';

const fs = require('fs');
const http = require('http');
const smpp = require('smpp');
const defs = require('smpp/lib/defs');

// Keep short_message as the octets the ESME sent (UDH included): the tests check them.
defs.filters.message.decode = function (value) { return value; };

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const systemId = args['system-id'] || 'kanal';
const password = args.password || 'secret';
const log = args.log;

let counter = 0;
const idBase = Math.floor(Date.now() / 1000) % 0x1000000;  // distinct ids across restarts
let throttle = 0;
let stall = 0;  // accept the next N submit_sm but never answer them (an answer lost)
let receiptTlvs = true;
let holdReceipts = false;
const outcomes = {};  // destination_addr -> {stat, err}
const received = [];
const pendingReceipts = [];  // deliver_sm params waiting for a bound ESME
const sessions = new Set();

function stamp(date) {
  const p = (n) => String(n).padStart(2, '0');
  return p(date.getUTCFullYear() % 100) + p(date.getUTCMonth() + 1) + p(date.getUTCDate()) +
    p(date.getUTCHours()) + p(date.getUTCMinutes());
}

const MESSAGE_STATE = { DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6,
  UNKNOWN: 7, REJECTD: 8 };

function receiptFor(pdu, messageId, body) {
  const outcome = outcomes[pdu.destination_addr] || { stat: 'DELIVRD', err: '000' };
  const now = new Date();
  const text = 'id:' + messageId + ' sub:001 dlvrd:' +
    (outcome.stat === 'DELIVRD' ? '001' : '000') + ' submit date:' + stamp(now) +
    ' done date:' + stamp(now) + ' stat:' + outcome.stat + ' err:' + outcome.err +
    ' text:' + body.slice(0, 20).toString('latin1');
  const params = {
    source_addr_ton: pdu.dest_addr_ton, source_addr_npi: pdu.dest_addr_npi,
    source_addr: pdu.destination_addr, dest_addr_ton: pdu.source_addr_ton,
    dest_addr_npi: pdu.source_addr_npi, destination_addr: pdu.source_addr,
    esm_class: 0x04, data_coding: 0, short_message: Buffer.from(text, 'latin1'),
  };
  if (receiptTlvs) {
    params.receipted_message_id = messageId;
    params.message_state = MESSAGE_STATE[outcome.stat] || 7;
  }
  if (pdu.user_message_reference !== undefined) {
    params.user_message_reference = pdu.user_message_reference;
  }
  return params;
}

function flushReceipts() {
  if (holdReceipts) return;
  const bound = [...sessions].filter((s) => s.bound && !s.closed);
  if (!bound.length) return;
  while (pendingReceipts.length) {
    const params = pendingReceipts.shift();
    const session = bound[Math.floor(Math.random() * bound.length)];
    session.deliver_sm(params, (resp) => {
      if (resp.command_status !== 0) pendingReceipts.push(params);
    });
    session.unacked.add(params);
  }
}

const server = smpp.createServer((session) => {
  session.bound = false;
  session.closed = false;
  session.unacked = new Set();
  sessions.add(session);
  const origSend = session.send.bind(session);
  // A receipt is acknowledged when its deliver_sm_resp comes; remember which ones are out.
  session.deliver_sm = (params, callback) => {
    origSend(new smpp.PDU('deliver_sm', params), (resp) => {
      session.unacked.delete(params);
      callback(resp);
    });
  };
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== systemId || pdu.password !== password) {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      session.close();
      return;
    }
    session.send(pdu.response({ system_id: 'kanal-test-smsc' }));
    session.bound = true;
    flushReceipts();
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('submit_sm', (pdu) => {
    if (!session.bound) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    if (throttle > 0) {
      throttle -= 1;
      session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      return;
    }
    counter += 1;
    const messageId = (idBase * 0x10000 + counter).toString(16).toUpperCase();
    const message = pdu.short_message || Buffer.alloc(0);
    const udhi = (pdu.esm_class & 0x40) !== 0;
    const udhLength = udhi && message.length ? message[0] + 1 : 0;
    const entry = {
      message_id: messageId, source_addr: pdu.source_addr, source_addr_ton: pdu.source_addr_ton,
      destination_addr: pdu.destination_addr, dest_addr_ton: pdu.dest_addr_ton,
      data_coding: pdu.data_coding, esm_class: pdu.esm_class,
      registered_delivery: pdu.registered_delivery,
      user_message_reference: pdu.user_message_reference === undefined
        ? null : pdu.user_message_reference,
      udh: message.slice(0, udhLength).toString('hex'),
      short_message: message.slice(udhLength).toString('hex'),
      at: new Date().toISOString(),
    };
    received.push(entry);
    if (log) fs.appendFileSync(log, JSON.stringify(entry) + '\n');
    if (stall > 0) {
      stall -= 1;
    } else {
      session.send(pdu.response({ message_id: messageId }));
    }
    if (pdu.registered_delivery & 0x03) {
      pendingReceipts.push(receiptFor(pdu, messageId, message.slice(udhLength)));
      setImmediate(flushReceipts);
    }
  });
  const gone = () => {
    if (session.closed) return;
    session.closed = true;
    sessions.delete(session);
    for (const params of session.unacked) pendingReceipts.push(params);  // send again later
    session.unacked.clear();
  };
  session.on('close', gone);
  session.on('error', gone);
});

server.listen(Number(args.port), '127.0.0.1');

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const q = url.searchParams;
  let body = { ok: true };
  if (req.method === 'GET' && url.pathname === '/received') {
    body = received;
  } else if (url.pathname === '/drop') {
    for (const session of [...sessions]) session.destroy();
  } else if (url.pathname === '/throttle') {
    throttle = Number(q.get('count') || 1);
  } else if (url.pathname === '/stall') {
    stall = Number(q.get('count') || 1);
  } else if (url.pathname === '/outcome') {
    outcomes[q.get('destination')] = { stat: q.get('stat'), err: q.get('err') || '000' };
  } else if (url.pathname === '/mo') {
    pendingReceipts.push({
      source_addr_ton: 1, source_addr_npi: 1, source_addr: q.get('source'),
      dest_addr_ton: 0, dest_addr_npi: 0, destination_addr: q.get('destination') || '2222',
      esm_class: 0, data_coding: 8,
      short_message: Buffer.from(q.get('text') || '', 'utf16le').swap16(),
    });
    flushReceipts();
  } else if (url.pathname === '/receipts') {
    if (q.has('tlvs')) receiptTlvs = q.get('tlvs') === '1';
    if (q.has('hold')) holdReceipts = q.get('hold') === '1';
    flushReceipts();
  } else {
    res.writeHead(404);
    res.end();
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}).listen(Number(args['control-port']), '127.0.0.1', () => {
  console.log('smsc ready');
});

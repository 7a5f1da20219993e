/**
 * The status page served at `/` on the admin port: one self-contained HTML document (inline CSS and
 * script, no external assets, no web fonts), so it works offline and behind any proxy. The script
 * polls `/status` every second and redraws; rates are the counters' differences between polls.
 *
 * It renders whatever `/status` returns: known route fields get their own place (flow of source,
 * buffers and sinks with connector health, rates, in-flight, counters); any other route field
 * (`buffer`, `buffers`, or fields added later) is shown as a details list; every component, of any
 * kind, is listed with its health and last error. All text goes in through `textContent`, never as
 * markup, so an event id or an error message cannot inject anything; the CSP allows only this
 * page's own script (by hash) and requests to its own origin.
 */
import { createHash } from "node:crypto";

const STYLE = `
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#5d6677;--line:#dde1e8;--ok:#1a7f37;--bad:#c62828;--warn:#b26a00;--accent:#2f5fd0}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--card:#1d2128;--ink:#e6e9ef;--mute:#9aa3b2;--line:#30363f;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--accent:#6d9bff}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;flex-wrap:wrap;gap:6px 16px;align-items:center;padding:10px 16px;background:var(--card);border-bottom:1px solid var(--line);position:sticky;top:0;z-index:1}
header h1{font-size:17px;margin:0 6px 0 0}
.meta{color:var(--mute);font-size:13px}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;border:1px solid currentColor}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.mute{color:var(--mute)}
main{padding:12px 16px;max-width:1400px;margin:0 auto}
h2{font-size:15px;margin:18px 0 8px}
.banner{margin:10px 0 0;padding:8px 12px;border:1px solid var(--bad);border-radius:6px;background:var(--card)}
.banner pre{margin:4px 0 0;white-space:pre-wrap;word-break:break-word;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-left:4px solid var(--ok);border-radius:6px;padding:10px 12px;min-width:0}
.card.degraded{border-left-color:var(--bad)}.card.failing{border-left-color:var(--warn)}
.card h3{margin:0;font-size:15px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
.flow{display:flex;flex-wrap:wrap;align-items:center;gap:4px;margin:8px 0;font-size:13px}
.chip{display:inline-flex;align-items:center;gap:4px;padding:1px 7px;border:1px solid var(--line);border-radius:4px;white-space:nowrap;max-width:100%;overflow:hidden;text-overflow:ellipsis}
.dot{width:8px;height:8px;border-radius:50%;background:var(--mute);flex:none}.dot.up{background:var(--ok)}.dot.down{background:var(--bad)}
.chip.failing{border-color:var(--warn)}.chip.failing .dot{background:var(--warn)}.chip.down{border-color:var(--bad)}
.dl{font-size:11px;color:var(--mute);text-transform:uppercase;margin-left:6px}
.arrow{color:var(--mute)}
.rates{display:flex;gap:16px;align-items:flex-end}
.big{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.lbl{font-size:11px;color:var(--mute);text-transform:uppercase;letter-spacing:.03em}
.sparkbox{flex:1 1 60px;min-width:0;max-width:200px;margin-left:auto}svg.spark{width:100%;height:34px;display:block;background:var(--bg);border-bottom:1px solid var(--line)}
svg.spark polyline{fill:none;stroke:var(--accent);stroke-width:1.5}
.bar{height:6px;background:var(--line);border-radius:3px;overflow:hidden;margin:4px 0 8px}.bar>i{display:block;height:100%;background:var(--accent)}
.counters{display:grid;grid-template-columns:repeat(auto-fill,minmax(88px,1fr));gap:4px 10px}
.counters div{font-variant-numeric:tabular-nums}.counters b{display:block;font-size:15px}
.counters .hot b{color:var(--bad)}
dl.extra{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:8px 0 0;font-size:12px}
dl.extra dt{color:var(--mute)}dl.extra dd{margin:0;word-break:break-word}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:6px;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:11px;color:var(--mute);text-transform:uppercase;letter-spacing:.03em}
td.msg{word-break:break-word}
.empty{color:var(--mute);padding:8px 0}
footer{color:var(--mute);font-size:12px;padding:16px;text-align:center}
@media (max-width:640px){
 header{padding:8px 10px}main{padding:8px 10px}
 .grid{grid-template-columns:1fr}
 table,tbody,tr,td{display:block;width:100%}thead{display:none}
 tr{border-bottom:1px solid var(--line);padding:4px 0}td{border:0;padding:2px 8px}
 td[data-label]::before{content:attr(data-label) ": ";color:var(--mute);font-size:11px;text-transform:uppercase}
}`;

const SCRIPT = `(function(){
"use strict";
var KNOWN={name:1,from:1,to:1,dead_letter:1,capacity:1,in_flight:1,counters:1,since:1,buffer:1,buffers:1};
var COUNTERS=[["received","received"],["delivered","delivered"],["retries","retries"],["failed","failed"],["deadLettered","dead letters"],["released","released"],["rejected","rejected"],["filtered","filtered"],["dropped","dropped"]];
var HOT={failed:1,deadLettered:1,rejected:1,dropped:1};
var last={},hist={},lastOk=0;
function h(tag,attrs){var e=document.createElement(tag);if(attrs)for(var k in attrs){if(k==="text")e.textContent=attrs[k];else if(k==="cls")e.className=attrs[k];else e.setAttribute(k,attrs[k]);}
 for(var i=2;i<arguments.length;i++){var c=arguments[i];if(c==null)continue;if(Array.isArray(c))c.forEach(function(x){if(x!=null)e.appendChild(x)});else e.appendChild(typeof c==="object"?c:document.createTextNode(String(c)));}return e;}
function fmt(n){if(typeof n!=="number")return String(n);if(Math.abs(n)>=1e6)return (n/1e6).toFixed(1)+"M";if(Math.abs(n)>=1e4)return (n/1e3).toFixed(1)+"k";return String(Math.round(n*10)/10);}
function ago(iso){var s=Math.max(0,(Date.now()-Date.parse(iso))/1000);if(!isFinite(s))return "";if(s<60)return Math.round(s)+"s ago";if(s<3600)return Math.round(s/60)+"m ago";if(s<86400)return (s/3600).toFixed(1)+"h ago";return (s/86400).toFixed(1)+"d ago";}
function time(iso){var d=new Date(iso);return isNaN(d)?String(iso):d.toLocaleTimeString();}
function text(v){if(v===null||v===undefined)return "–";if(typeof v==="object")return JSON.stringify(v);return String(v);}
function comp(s,kind,id){var key=kind+":"+id,c=(s.components||[]).filter(function(x){return x.kind+":"+x.id===key})[0];return c;}
var RECENT_MS=15000;
function recent(iso,now){var t=Date.parse(iso);return isFinite(t)&&now-t<RECENT_MS;}
function chip(s,kind,id,failing){var c=comp(s,kind,id);var up=c?c.up:null;var st=up===false?"down":failing?"failing":up===true?"up":"unknown";
 return h("span",{cls:"chip"+(st==="down"?" down":st==="failing"?" failing":""),title:kind+" "+id+(c?" ("+c.type+") "+(c.up?"up":"down")+" since "+c.since+(c.lastError?" — "+c.lastError:""):""),"data-component":key(kind,id),"data-health":st},h("i",{cls:"dot"+(up===true?" up":up===false?" down":"")}),id+(c?" ("+c.type+")":""));}
function key(k,i){return k+":"+i}
function spark(points){var w=140,hh=32,n=points.length,max=Math.max.apply(null,points.concat([1]));var p=points.map(function(v,i){return (w-(n-1-i)*(w/59)).toFixed(1)+","+(hh-2-(v/max)*(hh-4)).toFixed(1)}).join(" ");
 var svg=document.createElementNS("http://www.w3.org/2000/svg","svg");svg.setAttribute("class","spark");svg.setAttribute("viewBox","0 0 "+w+" "+hh);svg.setAttribute("preserveAspectRatio","none");
 var pl=document.createElementNS("http://www.w3.org/2000/svg","polyline");pl.setAttribute("points",p);svg.appendChild(pl);return svg;}
function buffers(r){var b=r.buffers!==undefined?r.buffers:r.buffer;if(b===undefined||b===null)return [];return Array.isArray(b)?b:[b];}
function bufferChip(b){if(typeof b!=="object"||b===null)return h("span",{cls:"chip","data-buffer":""},"buffer "+text(b));
 var parts=[];for(var k in b){if(typeof b[k]!=="object")parts.push(k+" "+fmt(b[k]));}
 return h("span",{cls:"chip","data-buffer":"",title:JSON.stringify(b)},"buffer"+(b.type?" ("+b.type+")":"")+(parts.length?": "+parts.filter(function(p){return p.indexOf("type ")!==0}).join(", "):""));}
function routeCard(s,r,now){
 var failingSinks={};(s.recent_errors||[]).forEach(function(e){if(e.where==="route:"+r.name&&e.sink&&recent(e.at,now))failingSinks[e.sink]=1;});
 var c=r.counters||{},prev=last[r.name],rin=0,rout=0;
 if(prev&&now>prev.t){var dt=(now-prev.t)/1000;rin=Math.max(0,((c.received||0)-prev.received)/dt);rout=Math.max(0,((c.delivered||0)-prev.delivered)/dt);}
 var hs=hist[r.name]||(hist[r.name]=[]);if(prev){hs.push(rout);if(hs.length>60)hs.shift();}
 var failingNow=Object.keys(failingSinks).length>0||(prev&&(((c.failed||0)>prev.failed)||((c.deadLettered||0)>prev.deadLettered)||((c.retries||0)>prev.retries)));
 last[r.name]={t:now,received:c.received||0,delivered:c.delivered||0,failed:c.failed||0,deadLettered:c.deadLettered||0,retries:c.retries||0};
 var names=[["source",r.from]].concat((r.to||[]).map(function(x){return ["sink",x]}));if(r.dead_letter)names.push(["sink",r.dead_letter]);
 var down=names.filter(function(n){var x=comp(s,n[0],n[1]);return x&&!x.up}).map(function(n){return n[0]+" "+n[1]});
 var cls="card"+(down.length?" degraded":failingNow?" failing":"");
 var fl=Object.keys(failingSinks);
 var state=down.length?h("span",{cls:"pill bad","data-state":"degraded"},"down: "+down.join(", ")):failingNow?h("span",{cls:"pill warn","data-state":"failing"},fl.length?"failing: sink "+fl.join(", "):"failures"):h("span",{cls:"pill ok","data-state":"ok"},"ok");
 var flow=h("div",{cls:"flow"},chip(s,"source",r.from),buffers(r).map(function(b){return [h("span",{cls:"arrow"},"→"),bufferChip(b)]}).reduce(function(a,b){return a.concat(b)},[]),h("span",{cls:"arrow"},"→"),(r.to||[]).map(function(x){return chip(s,"sink",x,failingSinks[x])}),r.dead_letter?[h("span",{cls:"dl"},"dead letters →"),chip(s,"sink",r.dead_letter,failingSinks[r.dead_letter])]:null);
 var cap=r.capacity||0,inf=r.in_flight||0;
 var rates=h("div",{cls:"rates"},h("div",null,h("div",{cls:"big","data-field":"rate-in"},fmt(rin)),h("div",{cls:"lbl"},"in / s")),h("div",null,h("div",{cls:"big","data-field":"rate-out"},fmt(rout)),h("div",{cls:"lbl"},"out / s")),h("div",null,h("div",{cls:"big","data-field":"in_flight"},fmt(inf)+(cap?" / "+fmt(cap):"")),h("div",{cls:"lbl"},"in flight")),h("div",{cls:"sparkbox",title:"delivered per second, last 60 s"},spark(hs.length?hs:[0]),h("div",{cls:"lbl"},"out / s, 60 s")));
 var bar=h("div",{cls:"bar",title:"window "+inf+" of "+cap},h("i",{style:"width:"+(cap?Math.min(100,100*inf/cap):0).toFixed(1)+"%"}));
 var counters=h("div",{cls:"counters"},COUNTERS.map(function(p){var v=c[p[0]]||0;return h("div",{cls:HOT[p[0]]&&v>0?"hot":""},h("b",{"data-field":p[0]},fmt(v)),h("span",{cls:"lbl"},p[1]))}));
 var extra=[];for(var k in r){if(!KNOWN[k])extra.push(k);}buffers(r).forEach(function(b,i){if(typeof b==="object"&&b)for(var kk in b)extra.push(["buffer"+(buffers(r).length>1?"["+i+"]":"")+"."+kk,b[kk]]);});
 var dl=extra.length?h("dl",{cls:"extra"},extra.map(function(k){var name=Array.isArray(k)?k[0]:k,val=Array.isArray(k)?k[1]:r[k];return [h("dt",{text:name}),h("dd",{text:text(val)})]}).reduce(function(a,b){return a.concat(b)},[])):null;
 return h("article",{cls:cls,"data-route":r.name},h("h3",null,r.name,state,h("span",{cls:"meta",title:r.since||""},r.since?"since "+time(r.since):"")),flow,rates,bar,counters,dl);}
function render(s){var now=Date.now();lastOk=now;
 var top=document.getElementById("top");top.textContent="";
 var cfg=s.config||{};
 top.appendChild(h("h1",null,"cebridge"));
 top.appendChild(h("span",{cls:"pill "+(s.ready?"ok":"bad"),id:"ready"},s.stopping?"stopping":s.ready?"ready":"not ready"));
 top.appendChild(h("span",{cls:"meta"},"instance "+text(s.instance_id)+" · v"+text(s.version)+" · up "+ago(s.started_at).replace(" ago","")));
 if(cfg.generation!==undefined)top.appendChild(h("span",{cls:"meta",id:"generation"},"config #"+cfg.generation+" loaded "+time(cfg.loaded_at)+(cfg.reloading?" · reloading…":"")));
 top.appendChild(h("span",{cls:"meta ok",id:"live"},"● live"));
 var ban=document.getElementById("banner");ban.textContent="";var lr=cfg.last_reload;
 if(lr&&(lr.result==="refused"||lr.result==="failed")){ban.appendChild(h("div",{cls:"banner",id:"reload-problem"},h("b",{cls:"bad"},"Reload "+lr.result+" at "+time(lr.at)+" ("+lr.trigger+"): the previous config keeps running."),lr.message?h("div",null,lr.message):null,lr.errors&&lr.errors.length?h("pre",{text:lr.errors.join("\\n")}):null));}
 else if(lr&&lr.needs_restart&&lr.needs_restart.length){ban.appendChild(h("div",{cls:"banner"},"Needs a restart to take effect: "+lr.needs_restart.join(", ")));}
 var routes=document.getElementById("routes");routes.textContent="";
 (s.routes||[]).forEach(function(r){routes.appendChild(routeCard(s,r,now))});
 if(!(s.routes||[]).length)routes.appendChild(h("div",{cls:"empty"},"no routes"));
 var ct=document.getElementById("components");ct.textContent="";
 (s.components||[]).forEach(function(c){ct.appendChild(h("tr",{"data-component":c.kind+":"+c.id},h("td",{"data-label":"component"},c.kind+" "+c.id),h("td",{"data-label":"type"},text(c.type)),h("td",{"data-label":"state"},h("span",{cls:"pill "+(c.up?"ok":"bad")},c.up?"up":"down")," "+ago(c.since)),h("td",{cls:"msg","data-label":"last error"},c.lastError?(c.lastError+(c.lastErrorAt?" ("+ago(c.lastErrorAt)+")":"")):"–")))});
 var et=document.getElementById("errors");et.textContent="";var errs=s.recent_errors||[];
 errs.forEach(function(e){et.appendChild(h("tr",null,h("td",{"data-label":"time"},time(e.at)),h("td",{"data-label":"where"},text(e.where)),h("td",{"data-label":"code"},text(e.code||"")),h("td",{cls:"msg","data-label":"message"},e.message+(e.event?" [event "+e.event+"]":""))))});
 document.getElementById("no-errors").style.display=errs.length?"none":"block";}
function stale(){var el=document.getElementById("live");if(el&&Date.now()-lastOk>3500){el.className="meta bad";el.textContent="● disconnected: retrying";}}
function tick(){fetch("status",{cache:"no-store"}).then(function(r){if(!r.ok)throw new Error(r.status);return r.json()}).then(render).catch(stale).then(function(){setTimeout(tick,1000)});}
setInterval(stale,1000);tick();})();`;

const SCRIPT_HASH = createHash("sha256").update(SCRIPT).digest("base64");

/** The page's Content-Security-Policy: its own inline style and (hashed) script, fetches to itself only. */
export const STATUS_PAGE_CSP = `default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-${SCRIPT_HASH}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>cebridge status</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body><header id="top"><h1>cebridge</h1><span class="meta">loading…</span></header>
<main><div id="banner"></div>
<h2>Routes</h2><section class="grid" id="routes"></section>
<h2>Connectors</h2><table><thead><tr><th>component</th><th>type</th><th>state</th><th>last error</th></tr></thead><tbody id="components"></tbody></table>
<h2>Recent errors</h2><table><thead><tr><th>time</th><th>where</th><th>code</th><th>message</th></tr></thead><tbody id="errors"></tbody></table><div class="empty" id="no-errors">none</div>
</main><footer>Refreshes every second · JSON at <a href="status">/status</a> · Prometheus at <a href="metrics">/metrics</a></footer>
<script>${SCRIPT}</script></body></html>
`;

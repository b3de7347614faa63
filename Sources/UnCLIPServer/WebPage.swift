/// The page at `/`: a prompt box, live progress and previews from the job's event stream, the images, and on any of
/// them variations or an edit whose mask is painted with a brush. One file, no external assets.
enum WebPage {
    static let html = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>unclip</title>
<style>
body{font:15px system-ui,sans-serif;margin:0;background:#f4f4f2;color:#222}
header{background:#222;color:#eee;padding:10px 18px;display:flex;gap:14px;align-items:baseline}
header b{font-size:18px} header span{opacity:.7}
main{max-width:980px;margin:0 auto;padding:16px}
textarea{width:100%;box-sizing:border-box;font:inherit;padding:8px;height:64px}
.row{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:8px 0}
button{font:inherit;padding:6px 14px;border:1px solid #555;background:#fff;border-radius:4px;cursor:pointer}
button.primary{background:#2a5db0;color:#fff;border-color:#2a5db0}
button:disabled{opacity:.5;cursor:default}
#bar{height:8px;background:#ddd;border-radius:4px;overflow:hidden;flex:1;min-width:200px}#fill{height:100%;width:0;background:#2a5db0}
#grid{display:flex;flex-wrap:wrap;gap:10px;margin-top:12px}
#grid img{width:192px;height:192px;image-rendering:pixelated;border:3px solid transparent;cursor:pointer;background:#ccc}
#grid img.sel{border-color:#2a5db0}
#preview{width:96px;height:96px;image-rendering:pixelated;background:#ccc}
#editor{position:relative;width:384px;height:384px;display:none;margin-top:12px}
#editor canvas{position:absolute;left:0;top:0;width:384px;height:384px;image-rendering:pixelated}
#paint{cursor:crosshair}
.err{color:#b00020;white-space:pre-wrap}
small{opacity:.7}
</style></head><body>
<header><b>unclip</b><span id="model">unCLIP on the CPU</span></header>
<main>
<textarea id="prompt" placeholder="a red circle on top of a blue square">a red circle on top of a blue square</textarea>
<div class="row">
<label>images <select id="n"><option>1</option><option>2</option><option selected>4</option></select></label>
<label>size <select id="size"><option>256x256</option><option>512x512</option><option>1024x1024</option></select></label>
<button class="primary" id="go">Generate</button>
<button id="vary" disabled>Variations of selected</button>
<button id="edit" disabled>Edit selected…</button>
<label><small>API key</small> <input id="key" type="password" size="12"></label>
</div>
<div class="row"><img id="preview" alt=""><div id="bar"><div id="fill"></div></div><span id="status">idle</span></div>
<div id="error" class="err"></div>
<div id="editor"><canvas id="base" width="64" height="64"></canvas><canvas id="paint" width="64" height="64"></canvas></div>
<div class="row" id="edittools" style="display:none">
<label>brush <input id="brush" type="range" min="2" max="48" value="16"></label>
<button id="clearmask">Clear mask</button><button class="primary" id="apply">Apply edit</button>
<small>paint over what to regenerate; the prompt describes the whole new image</small></div>
<div id="grid"></div>
</main>
<script>
const $=id=>document.getElementById(id);
let selected=null;
$('key').value=localStorage.getItem('unclip-key')||'';
$('key').onchange=()=>localStorage.setItem('unclip-key',$('key').value);
function headers(extra){const h=Object.assign({},extra||{});const k=$('key').value;if(k)h['Authorization']='Bearer '+k;return h}
function newId(){let s='web-';for(let i=0;i<24;i++)s+='0123456789abcdef'[Math.floor(Math.random()*16)];return s}
fetch('/health').then(r=>r.json()).then(j=>{$('model').textContent='model '+j.model}).catch(()=>{});
async function follow(id){
  for(let tries=0;tries<50;tries++){
    const r=await fetch('/v1/jobs/'+id+'/events',{headers:headers()});
    if(r.status===404){await new Promise(ok=>setTimeout(ok,100));continue}
    if(!r.ok)return;
    const rd=r.body.getReader();const dec=new TextDecoder();let buf='';
    for(;;){const {value,done}=await rd.read();if(done)return;buf+=dec.decode(value,{stream:true});
      let i;while((i=buf.indexOf('\n\n'))>=0){const block=buf.slice(0,i);buf=buf.slice(i+2);
        let ev='message',data='';for(const line of block.split('\n')){if(line.startsWith('event: '))ev=line.slice(7);if(line.startsWith('data: '))data+=line.slice(6)}
        const d=JSON.parse(data);
        if(ev==='queued'){$('status').textContent='queued, position '+d.position}
        if(ev==='progress'){$('fill').style.width=(100*d.fraction).toFixed(1)+'%';$('status').textContent=d.stage+' '+d.step+'/'+d.total+(d.eta_seconds!=null?'  ETA '+d.eta_seconds.toFixed(1)+' s':'')}
        if(ev==='preview'){$('preview').src='data:image/png;base64,'+d.b64_png}
        if(ev==='done'||ev==='error')return}}
  }
}
function busy(b){for(const id of ['go','vary','edit','apply'])$(id).disabled=b||((id!=='go')&&!selected)}
async function run(path,body,isForm){
  const id=newId();busy(true);$('error').textContent='';$('fill').style.width='0';$('status').textContent='sending';
  const h=headers({'X-Unclip-Job-Id':id});if(!isForm)h['Content-Type']='application/json';
  const t0=performance.now();
  const req=fetch(path,{method:'POST',headers:h,body:isForm?body:JSON.stringify(body)});
  follow(id);
  try{const r=await req;const j=await r.json();
    if(!r.ok){$('error').textContent=(j.error&&j.error.message)||JSON.stringify(j);$('status').textContent='failed';return}
    $('fill').style.width='100%';$('status').textContent='done in '+((performance.now()-t0)/1000).toFixed(1)+' s (seeds '+r.headers.get('X-Unclip-Seeds')+')';
    $('grid').innerHTML='';selected=null;
    for(const d of j.data){const im=new Image();im.src='data:image/png;base64,'+d.b64_json;im.onclick=()=>select(im);$('grid').appendChild(im)}
    if($('grid').firstChild)select($('grid').firstChild);
  }catch(e){$('error').textContent=String(e)}finally{busy(false)}
}
function select(im){for(const x of $('grid').children)x.classList.remove('sel');im.classList.add('sel');selected=im;busy(false)}
$('go').onclick=()=>run('/v1/images/generations',{prompt:$('prompt').value,n:+$('n').value,size:$('size').value,response_format:'b64_json'});
async function blobOf(canvas){return await new Promise(ok=>canvas.toBlob(ok,'image/png'))}
function imageCanvas(){const c=document.createElement('canvas');c.width=selected.naturalWidth;c.height=selected.naturalHeight;c.getContext('2d').drawImage(selected,0,0);return c}
$('vary').onclick=async()=>{const f=new FormData();f.append('image',await blobOf(imageCanvas()),'image.png');f.append('n',$('n').value);f.append('size',$('size').value);f.append('response_format','b64_json');run('/v1/images/variations',f,true)};
let painting=false;
$('edit').onclick=()=>{const s=selected.naturalWidth;for(const id of ['base','paint']){$(id).width=s;$(id).height=s}
  $('base').getContext('2d').drawImage(selected,0,0);$('paint').getContext('2d').clearRect(0,0,s,s);
  $('editor').style.display='block';$('edittools').style.display='flex'};
function dab(e){const c=$('paint'),r=c.getBoundingClientRect(),s=c.width/r.width,g=c.getContext('2d');
  g.fillStyle='rgba(255,0,80,0.6)';g.beginPath();g.arc((e.clientX-r.left)*s,(e.clientY-r.top)*s,+$('brush').value*s,0,7);g.fill()}
$('paint').onpointerdown=e=>{painting=true;dab(e)};$('paint').onpointermove=e=>{if(painting)dab(e)};window.onpointerup=()=>painting=false;
$('clearmask').onclick=()=>{const c=$('paint');c.getContext('2d').clearRect(0,0,c.width,c.height)};
$('apply').onclick=async()=>{
  const s=$('paint').width,p=$('paint').getContext('2d').getImageData(0,0,s,s);
  const m=document.createElement('canvas');m.width=s;m.height=s;const g=m.getContext('2d');g.drawImage($('base'),0,0);
  const d=g.getImageData(0,0,s,s);let n=0;for(let i=0;i<s*s;i++){if(p.data[i*4+3]>0){d.data[i*4+3]=0;n++}}g.putImageData(d,0,0);
  if(!n){$('error').textContent='paint over the part to regenerate first';return}
  const f=new FormData();f.append('image',await blobOf(imageCanvas()),'image.png');f.append('mask',await blobOf(m),'mask.png');
  f.append('prompt',$('prompt').value);f.append('n',$('n').value);f.append('size',$('size').value);f.append('response_format','b64_json');
  run('/v1/images/edits',f,true)};
</script></body></html>
"""#
}

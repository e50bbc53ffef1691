// Backdrop's page. A client of the public API like any other: every result comes from
// POST /v1/matte; the touch-up strokes travel as its "hints" upload (a PNG of the photo's
// size: white = keep, black = remove, transparent = no hint). No libraries, no build step.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const els = {
    drop: $("drop"), photo: $("photo"), bgColor: $("bg-color"), bgFile: $("bg-file"),
    colorField: $("color-field"), imageField: $("image-field"), status: $("status-text"),
    progress: $("progress"), error: $("error"), result: $("result"), stage: $("stage"),
    tools: $("tools"), before: $("before"), after: $("after"), canvas: $("strokes"), compare: $("compare"),
    brushSize: $("brush-size"), brushSizeValue: $("brush-size-value"), undo: $("undo"),
    clear: $("clear"), format: $("format"), download: $("download"), divider: $("divider"),
    resultTitle: $("result-title"),
  };

  // What the service's error codes mean to someone using this page (the service's own
  // message follows, for the details).
  const ADVICE = {
    empty_body: "The file is empty.",
    invalid_image: "This file is not an image the server can read, or it is damaged.",
    unsupported_format: "This image format is not supported: use PNG, JPEG, WebP, GIF, BMP or TIFF.",
    image_too_large: "This photo has more pixels than the server accepts: try a smaller one.",
    payload_too_large: "This file is larger than the server accepts: try a smaller one.",
    image_too_small: "This image is too small.",
    no_subject: "No subject was found in this photo. Choose the Keep brush and paint over what to keep.",
    invalid_hints: "The touch-up strokes do not fit this photo: clear them and try again.",
    invalid_parameter: "The server refused a setting.",
    segmentation_unavailable: "The server's segmentation service cannot be reached: try again in a moment.",
    segmentation_timeout: "The server took too long: try a smaller photo.",
    segmentation_bad_response: "The server's segmentation service failed: try again.",
    not_ready: "The server is still starting: try again in a moment.",
    internal_error: "The server failed unexpectedly.",
  };

  const STROKE_COLOURS = { keep: "rgba(0, 200, 83, 0.5)", remove: "rgba(229, 57, 53, 0.5)" };
  // Each stroke on screen is ringed dark outside, light inside (screen pixels): one of the
  // two contrasts with any background, the Remove red over an orange one included.
  const OUTLINE = [{ colour: "#000000", width: 3 }, { colour: "#ffffff", width: 1.5 }];
  const HINT_COLOURS = { keep: "#ffffff", remove: "#000000" };

  const state = {
    photo: null,        // the chosen File
    photoName: "photo",
    photoUrl: null,
    width: 0,           // the photo's size in pixels, as the browser shows it (EXIF applied)
    height: 0,
    strokes: [],        // {mode, width (photo px), points: [[x, y], ...]}
    drawing: null,
    xhr: null,
    resultBlob: null,
    resultUrl: null,
    downloadUrl: null,
    hasResult: false,
  };

  // ------------------------------------------------------------------ status and errors

  function say(text, progress) {
    els.status.textContent = text;
    if (progress === undefined) {
      els.progress.hidden = true;
    } else {
      els.progress.hidden = false;
      if (progress === null) els.progress.removeAttribute("value");
      else els.progress.value = progress;
    }
    fitStage();  // a longer or shorter line moves what comes below it
  }

  function showError(text) {
    els.error.textContent = text;
    els.error.hidden = false;
    fitStage();
  }

  function clearError() {
    els.error.hidden = true;
    els.error.textContent = "";
    fitStage();
  }

  // After a failed request: no old result beside the message, nothing to download. The
  // photo stays (strokes may help: Keep where no subject was found); when the browser cannot
  // show the photo either (TIFF), the result panel goes, rather than an empty frame.
  function failed(text) {
    clearResult();
    say("No result.");
    showError(text);
    if (!state.width) {
      els.result.hidden = true;
      els.tools.hidden = true;
    }
  }

  function errorText(status, body) {
    let code = null;
    let message = "";
    try {
      const parsed = JSON.parse(body);
      code = parsed.error && parsed.error.code;
      message = (parsed.error && parsed.error.message) || "";
    } catch (_) {
      // not the JSON envelope (a proxy's page?): say what we know
    }
    const advice = ADVICE[code] || `The server answered HTTP ${status}.`;
    return message ? `${advice} (${message})` : advice;
  }

  // ------------------------------------------------------------------ the photo

  function setPhoto(file) {
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      // the photo already chosen, if any, and its result stay; the status says so
      showError(`"${file.name}" is not an image: choose a PNG, JPEG, WebP, GIF, BMP or TIFF file.`);
      if (state.hasResult) say("The previous photo and its result are kept.");
      else if (state.photo) say("The previous photo is kept.");
      else say("Choose a photo to begin.");
      return;
    }
    clearError();
    if (state.xhr) state.xhr.abort();
    state.photo = file;
    state.photoName = (file.name || "photo").replace(/\.[^.]*$/, "") || "photo";
    state.strokes = [];
    if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
    state.photoUrl = URL.createObjectURL(file);
    clearResult();
    updateButtons();
    say("Opening the photo…", null);
    els.before.onload = () => {
      els.stage.classList.remove("no-preview");
      els.before.hidden = false;
      state.width = els.before.naturalWidth;
      state.height = els.before.naturalHeight;
      els.canvas.width = state.width;
      els.canvas.height = state.height;
      els.before.style.clipPath = "none";
      els.result.hidden = false;
      els.tools.hidden = false;
      setBrushing();
      fitStage();
      redraw();
      run();
    };
    els.before.onerror = () => {
      // The browser cannot show it (TIFF, for one): the server may still read it; no
      // before/after view and no touch-up then, and no broken-image icon: the panel shows
      // when the result comes.
      els.stage.classList.add("no-preview");
      els.before.hidden = true;
      state.width = 0;
      state.height = 0;
      els.result.hidden = true;
      els.tools.hidden = true;
      setBrushing();
      run();
    };
    els.before.src = state.photoUrl;
  }

  els.photo.addEventListener("change", () => setPhoto(els.photo.files[0]));

  ["dragenter", "dragover"].forEach((type) => document.addEventListener(type, (event) => {
    event.preventDefault();
    els.drop.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((type) => document.addEventListener(type, (event) => {
    event.preventDefault();
    els.drop.classList.remove("dragging");
  }));
  document.addEventListener("drop", (event) => {
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) setPhoto(files[0]);
  });
  document.addEventListener("paste", (event) => {
    const items = (event.clipboardData && event.clipboardData.items) || [];
    for (const item of items) {
      if (item.kind === "file" && item.type.startsWith("image/")) {
        setPhoto(item.getAsFile());
        event.preventDefault();
        return;
      }
    }
  });

  // ------------------------------------------------------------------ the background

  function bgMode() {
    return document.querySelector('input[name="bg"]:checked').value;
  }

  function describeBackground() {
    const mode = bgMode();
    if (mode === "color") return `a ${els.bgColor.value} background`;
    if (mode === "image") return "the chosen background image";
    if (mode === "blur") return "its own background blurred";
    if (mode === "grayscale") return "its own background in greyscale";
    return "a transparent background";
  }

  document.querySelectorAll('input[name="bg"]').forEach((radio) => radio.addEventListener("change", () => {
    els.colorField.hidden = bgMode() !== "color";
    els.imageField.hidden = bgMode() !== "image";
    run();
  }));
  els.bgColor.addEventListener("change", run);
  els.bgFile.addEventListener("change", run);

  // What the photo shows: auto (not sent: the service decides per photo), person or object.
  function subject() {
    return document.querySelector('input[name="subject"]:checked').value;
  }

  document.querySelectorAll('input[name="subject"]').forEach((radio) => radio.addEventListener("change", run));

  // ------------------------------------------------------------------ asking the service

  function hintsBlob() {
    const canvas = document.createElement("canvas");
    canvas.width = state.width;
    canvas.height = state.height;
    paint(canvas.getContext("2d"), HINT_COLOURS);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  async function run() {
    if (!state.photo) return;
    const mode = bgMode();
    if (mode === "image" && !els.bgFile.files[0]) {
      say("Choose a background image.");
      return;
    }
    clearError();
    const form = new FormData();
    form.append("image", state.photo, state.photo.name || "photo");
    form.append("bg_mode", mode);
    form.append("format", "png");
    if (subject() !== "auto") form.append("subject", subject());
    if (mode === "color") form.append("bg_color", els.bgColor.value);
    if (mode === "image") form.append("bg_image", els.bgFile.files[0]);
    const strokes = state.strokes.length;
    if (strokes && state.width) form.append("hints", await hintsBlob(), "hints.png");

    if (state.xhr) state.xhr.abort();
    const xhr = new XMLHttpRequest();
    state.xhr = xhr;
    const started = performance.now();
    els.stage.classList.add("busy");
    xhr.open("POST", "/v1/matte");
    xhr.responseType = "blob";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) say(`Uploading… ${Math.round(100 * event.loaded / event.total)} %`,
                                      Math.round(100 * event.loaded / event.total));
    };
    xhr.upload.onload = () => say(strokes ? "Correcting the edge with your strokes…" : "Replacing the background…", null);
    xhr.onload = async () => {
      if (state.xhr !== xhr) return;
      state.xhr = null;
      els.stage.classList.remove("busy");
      if (xhr.status === 200) {
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        showResult(xhr.response);
        say(`Done in ${seconds} s${strokes ? `, with ${strokes} touch-up stroke${strokes > 1 ? "s" : ""}` : ""}.`);
      } else {
        failed(errorText(xhr.status, await xhr.response.text()));
      }
    };
    xhr.onerror = () => {
      if (state.xhr !== xhr) return;
      state.xhr = null;
      els.stage.classList.remove("busy");
      failed("The server could not be reached: is Backdrop still running?");
    };
    xhr.send(form);
  }

  function showResult(blob) {
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultBlob = blob;
    state.resultUrl = URL.createObjectURL(blob);
    state.hasResult = true;
    els.after.src = state.resultUrl;
    els.after.alt = `The result: the subject of your photo on ${describeBackground()}`;
    els.after.hidden = false;
    els.result.hidden = false;
    els.tools.hidden = false;
    compare();
    prepareDownload();
  }

  function clearResult() {
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultBlob = null;
    state.resultUrl = null;
    state.hasResult = false;
    els.after.hidden = true;
    els.after.removeAttribute("src");
    els.after.alt = "The result";
    compare();
    setDownload(null);
  }

  // An answer the browser cannot show as an image: said in words, not a broken-image icon.
  els.after.addEventListener("error", () => {
    if (!state.resultUrl) return;
    failed("The server's answer is not an image this browser can show: try again, or try PNG.");
  });
  els.after.addEventListener("load", fitStage);

  // ------------------------------------------------------------------ the stage's geometry

  // The photo in whole device pixels, at a whole-pixel place: scaled to a fractional size or
  // placed at a fraction of a pixel, its edge column or row would be drawn half-covered,
  // blended with the white behind it (a light line at the result's edge). The stage keeps
  // its centring, moved right by less than a pixel, and the title above it grows by less
  // than a pixel.
  function fitStage() {
    const img = els.stage.classList.contains("no-preview") ? els.after : els.before;
    img.style.width = "";
    img.style.height = "";
    els.stage.style.marginLeft = "";
    els.resultTitle.style.paddingBottom = "";
    if (els.result.hidden || img.hidden || !img.naturalWidth) return;
    const ratio = window.devicePixelRatio || 1;
    const whole = (value) => Math.ceil(value * ratio - 0.01) / ratio;  // the next device pixel
    const shown = img.getBoundingClientRect();
    img.style.width = `${Math.floor(shown.width * ratio + 0.01) / ratio}px`;
    img.style.height = `${Math.floor(shown.height * ratio + 0.01) / ratio}px`;
    const placed = els.stage.getBoundingClientRect();
    const dx = whole(placed.left) - placed.left;
    const dy = whole(placed.top) - placed.top;
    if (dx > 0) els.stage.style.marginLeft = `${parseFloat(getComputedStyle(els.stage).marginLeft) + dx}px`;
    if (dy > 0) els.resultTitle.style.paddingBottom = `${dy}px`;
  }
  window.addEventListener("resize", fitStage);

  // ------------------------------------------------------------------ before / after

  function compare() {
    const shown = Number(els.compare.value);
    if (!state.hasResult) {
      els.before.style.clipPath = "none";
      els.divider.hidden = true;
      return;
    }
    els.before.style.clipPath = `inset(0 ${100 - shown}% 0 0)`;
    els.after.style.clipPath = `inset(0 0 0 ${shown}%)`;
    els.divider.style.left = `${shown}%`;
    els.divider.hidden = shown === 0 || shown === 100;
    els.compare.setAttribute("aria-valuetext", `${shown} % of the width shows the original`);
  }
  els.compare.addEventListener("input", compare);

  // ------------------------------------------------------------------ download

  function setDownload(blob, extension) {
    if (state.downloadUrl && state.downloadUrl !== state.resultUrl) URL.revokeObjectURL(state.downloadUrl);
    state.downloadUrl = null;
    if (!blob) {
      els.download.href = "#";
      els.download.setAttribute("aria-disabled", "true");
      return;
    }
    state.downloadUrl = blob === state.resultBlob ? state.resultUrl : URL.createObjectURL(blob);
    els.download.href = state.downloadUrl;
    els.download.download = `${state.photoName}-backdrop.${extension}`;
    els.download.textContent = `Download the result (${extension === "png" ? "PNG" : "JPEG"})`;
    els.download.removeAttribute("aria-disabled");
  }

  async function prepareDownload() {
    if (!state.resultBlob) return;
    if (els.format.value === "png") {
      setDownload(state.resultBlob, "png");
      return;
    }
    // JPEG has no transparency: flattened over white, as the service does for format=jpg.
    const bitmap = await createImageBitmap(state.resultBlob);
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(bitmap, 0, 0);
    canvas.toBlob((jpeg) => setDownload(jpeg, "jpg"), "image/jpeg", 0.92);
  }
  els.format.addEventListener("change", prepareDownload);
  els.download.addEventListener("click", (event) => {
    if (!state.downloadUrl) event.preventDefault();
  });

  // ------------------------------------------------------------------ touch-up strokes

  function brush() {
    return document.querySelector('input[name="brush"]:checked').value;
  }

  // Every stroke in the colour colourOf(stroke), widened by `wider` photo pixels.
  function trace(ctx, strokes, colourOf, wider = 0) {
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const stroke of strokes) {
      const width = stroke.width + wider;
      ctx.strokeStyle = colourOf(stroke);
      ctx.fillStyle = colourOf(stroke);
      ctx.lineWidth = width;
      const [first, ...rest] = stroke.points;
      ctx.beginPath();
      if (!rest.length) {
        ctx.arc(first[0], first[1], width / 2, 0, 2 * Math.PI);
        ctx.fill();
        continue;
      }
      ctx.moveTo(first[0], first[1]);
      for (const [x, y] of rest) ctx.lineTo(x, y);
      ctx.stroke();
    }
  }

  // The hints the service reads: the strokes alone, in plain colours.
  function paint(ctx, colours) {
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    trace(ctx, state.strokes, (stroke) => colours[stroke.mode]);
  }

  // What the user sees: the rings of OUTLINE around the strokes (their insides cleared), then
  // the strokes' translucent colours.
  function redraw() {
    const ctx = els.canvas.getContext("2d");
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    const strokes = state.drawing ? [...state.strokes, state.drawing] : state.strokes;
    if (!strokes.length) return;
    const shown = els.canvas.getBoundingClientRect().width;
    const photoPixels = shown ? state.width / shown : 1;  // photo pixels per screen pixel
    let ring = OUTLINE.reduce((sum, line) => sum + line.width, 0);
    for (const line of OUTLINE) {
      trace(ctx, strokes, () => line.colour, 2 * ring * photoPixels);
      ring -= line.width;
    }
    ctx.globalCompositeOperation = "destination-out";
    trace(ctx, strokes, () => "#000000");
    ctx.globalCompositeOperation = "source-over";
    trace(ctx, strokes, (stroke) => STROKE_COLOURS[stroke.mode]);
  }

  function updateButtons() {
    els.undo.disabled = !state.strokes.length;
    els.clear.disabled = !state.strokes.length;
  }

  function photoPoint(event) {
    const box = els.canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * state.width / box.width,
            (event.clientY - box.top) * state.height / box.height];
  }

  function setBrushing() {
    els.stage.classList.toggle("brushing", brush() !== "off" && state.width > 0);
  }
  document.querySelectorAll('input[name="brush"]').forEach((radio) => radio.addEventListener("change", setBrushing));

  els.brushSize.addEventListener("input", () => {
    els.brushSizeValue.textContent = `${els.brushSize.value} px`;
  });

  els.canvas.addEventListener("pointerdown", (event) => {
    if (brush() === "off" || !state.width || event.button > 0) return;
    event.preventDefault();
    els.canvas.setPointerCapture(event.pointerId);
    const scale = state.width / els.canvas.getBoundingClientRect().width;
    state.drawing = { mode: brush(), width: Number(els.brushSize.value) * scale, points: [photoPoint(event)] };
    redraw();
  });
  els.canvas.addEventListener("pointermove", (event) => {
    if (!state.drawing) return;
    state.drawing.points.push(photoPoint(event));
    redraw();
  });
  function endStroke() {
    if (!state.drawing) return;
    state.strokes.push(state.drawing);
    state.drawing = null;
    redraw();
    updateButtons();
    run();
  }
  els.canvas.addEventListener("pointerup", endStroke);
  els.canvas.addEventListener("pointercancel", () => { state.drawing = null; redraw(); });

  function undo() {
    if (!state.strokes.length) return;
    state.strokes.pop();
    redraw();
    updateButtons();
    run();
  }
  els.undo.addEventListener("click", undo);
  els.clear.addEventListener("click", () => {
    state.strokes = [];
    redraw();
    updateButtons();
    run();
  });
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)
      && document.activeElement.type !== "radio" && document.activeElement.type !== "range";
    if ((event.ctrlKey || event.metaKey) && event.key === "z" && !typing) {
      event.preventDefault();
      undo();
    }
  });

  setDownload(null);
  setBrushing();
})();

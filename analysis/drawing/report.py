"""The self-contained HTML report of visualize.py --report: one file, every figure inline, no network.

    page = report_html(title, facts, survey.model_summary(model),
                       [Section("Layer conv2", [("top_patches", "conv2_top_patches.png")])], probe, figures_dir)

PNGs are embedded as base64 data URIs, so the page opens in any browser, offline,
and can be mailed as one file. A small inline script marks <body> with
data-images-loaded="N/N" once every image has decoded and counts errors in
data-errors, so a headless browser can check the page (tests/test_visualize.py).
"""

import base64
import html
from dataclasses import dataclass
from pathlib import Path

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.meta { color: #666; } figure { margin: 0.5em 0 1.5em; } figcaption { color: #888; font-size: 0.8em; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; } th { background: #f4f4f4; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
"""

# Marks the page once every image has decoded (and counts errors), so a headless browser can check it.
SCRIPT = """
window.addEventListener("error", function () {
  var body = document.body || document.documentElement;
  body.setAttribute("data-errors", String(Number(body.getAttribute("data-errors") || "0") + 1));
}, true);
window.addEventListener("load", function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { loaded++; }
  }
  document.body.setAttribute("data-images-loaded", loaded + "/" + images.length);
});
"""

EXPLANATIONS = {
    "hierarchy": "Each row is one layer; each block shows the input patches that excite one of its most active "
                 "units. Early units see a few pixels and respond to edges; deeper units see more of the image and "
                 "respond to strokes, then parts of digits; dense units see the whole image and respond to digits.",
    "probe": "A linear classifier trained on each layer's output alone: how much of the digit's identity a layer "
             "makes easy to read off. Accuracy rising with depth shows the network building the answer step by step.",
    "probe_first_digit": "A linear classifier trained on each layer's output alone, here to tell each number's first "
                         "(leftmost) digit: one class per image, as for a single digit. Maps are reduced to their "
                         "mean and maximum per channel over the whole image (the reader's per-column layers over all "
                         "columns), so a probe cannot tell where a feature was: it measures how much of the first "
                         "digit's identity a layer holds anywhere, mixed with the number's other digits. The dashed "
                         "line is the share of the commonest first digit: what always guessing it scores.",
    "gradcam": "For some test images, and for mistakes, the regions of the image that pushed the predicted digit's "
               "score up the most (Grad-CAM at the last convolutional layer). Mistakes show what misled the model.",
    "evidence": "What the reader looks at: for a few test numbers read correctly and a few misread, one panel per "
                "digit it read. The reader reads a number column by column (the orange bar marks the column that "
                "read the digit); through its convolutions and its 1-D layers that column sees a wide stretch of the "
                "image, neighbouring digits included. Red marks where the features lie that raised that digit's "
                "log-probability in its column (gradient × activation at the trunk's last layer, position by "
                "position). Evidence on the digit's own strokes is a reading for the right reason; evidence on a "
                "neighbour, the background or the border shows what a mistake came from.",
    "feature_maps": "The layer's output for a few test images, one small map per channel: bright where the channel "
                    "found its pattern.",
    "top_patches": "For the most active units, the test-image patches that excite each one most, cut to exactly the "
                   "part of the image the unit sees (its receptive field).",
    "filter_patterns": "Synthetic images grown by gradient ascent to excite one unit as much as possible: the "
                       "pattern each unit looks for, free of any particular digit.",
    "templates": "The weights of a dense layer that reads the pixels directly, drawn as images: where ink raises "
                 "or lowers each unit's activation (colours as the figure's caption says).",
    "top_images": "For the most active units, the whole test images that excite each one most.",
}


@dataclass(frozen=True)
class Section:
    """A part of the report: a heading and its figures, as (view, PNG file name) with view a key of EXPLANATIONS."""

    heading: str
    figures: list[tuple[str, str]]


def report_html(title: str, facts: list[str], layers: list[tuple[str, str, str, str, str]], sections: list[Section],
                probe: dict | None, figures_dir: Path) -> str:
    """The page: title, facts (one line), the model's layers, then each section's PNGs from figures_dir inline.

    layers: (path, type, output shape, parameters, receptive field) per layer, as survey.model_summary gives them.
    """
    escape = html.escape
    anchors = ["model"] + [f"section{number}" for number in range(1, len(sections) + 1)]
    headings = ["The model"] + [section.heading for section in sections]
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", f"<script>{SCRIPT}</script>",
        "</head>", '<body data-errors="0">', f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(" · ".join(facts))}</p>',
        "<nav><ol>" + "".join(f'<li><a href="#{anchor}">{escape(heading)}</a></li>'
                              for heading, anchor in zip(headings, anchors))
        + "</ol></nav>",
        f'<h2 id="{anchors[0]}">The model</h2>',
        "<p>Every layer from input to output, with the square of input pixels that one of its units sees (its "
        "receptive field); after flattening, every unit sees the whole image. The figures of a convolution or "
        "dense layer show its output after its own batch norm and activation, where it has them "
        "(conv2 → conv2_relu).</p>",
        "<table><tr><th>layer</th><th>type</th><th>output shape</th><th>parameters</th><th>receptive field</th></tr>",
    ]
    for path, kind, shape, parameters, field in layers:
        parts.append(f"<tr><td>{escape(path)}</td><td>{escape(kind)}</td><td>{escape(shape)}</td>"
                     f'<td class="number">{escape(parameters)}</td><td>{escape(field)}</td></tr>')
    parts.append("</table>")
    for section, anchor in zip(sections, anchors[1:]):
        parts.append(f'<h2 id="{anchor}">{escape(section.heading)}</h2>')
        for view, name in section.figures:
            data = base64.b64encode((figures_dir / name).read_bytes()).decode("ascii")
            parts.append(f"<p>{escape(EXPLANATIONS[view])}</p>")
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(name)}">'
                         f"<figcaption>{escape(name)}</figcaption></figure>")
            if view.startswith("probe") and probe is not None:
                parts.append(probe_table(probe))
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def probe_table(probe: dict) -> str:
    rows = "".join(f"<tr><td>{html.escape(row['layer'])}</td><td>{html.escape(row['response'])}</td>"
                   f'<td class="number">{row["features"]}</td>'
                   f'<td class="number">{100 * row["accuracy"]:.1f} %</td></tr>' for row in probe["layers"])
    return (f"<p>Linear-probe test accuracy ({probe['train_images']:,} training and {probe['test_images']:,} test "
            "images):</p><table><tr><th>layer</th><th>output taken after</th><th>features</th>"
            f"<th>test accuracy</th></tr>{rows}</table>")

"""Whole numbers composed from real single digits: a seeded, endless source of numbers with digit boxes.

    from data.composer import NumberComposer
    composer = NumberComposer(digits.x_train, digits.y_train, (32, 128, 1), "handwriting")
    images, labels, boxes = composer.compose(128, seed=(run_seed, step))

Each number is 1..MAX_DIGITS real digits laid out as people write or signs
show them: gaps that vary from wide to touching and overlapping, each digit's
own size, baseline, slant and turn, then fitted inside the output at a random
place. Given writer groups (e.g. CVL's writer ids), all the digits of a number
come from one group, so that it looks written by one hand. Three looks, each
with its knobs in one frozen dataclass:

- "handwriting" (handwriting.py; MNIST's 28x28 white-on-black digits): one pen
  per number (strokes thickened or thinned), on a form: paper texture, printed
  patterns (ruled lines, a squared grid, dotted guide boxes, comb fields, a
  cheque's fine pattern) and separators that belong to no digit (dots,
  commas, dashes, an underline). The polarity stays MNIST's: ink bright, paper
  dark, so a reader sees digits as single-digit models do.
- "amounts" (handwriting.py's AMOUNTS): the handwriting look as amounts are
  written on cheques and forms and scanned: marks at a number's ends (a closing
  dash, ",-", "=", a flourish, an opening dash), a printed box, printed lines
  as dark as the ink, crops cut close whose edge columns are repeated.
- "street" (street.py; SVHN's 32x32 colour crops): each crop's central column,
  its luminance normalised with the digit as ink, so that the digits of one
  number share one sign's colours, with seams blended; then a plate on a wall,
  lighting, blur, JPEG-like colour bleeding and noise, different per number.

layout.py holds NumberComposer: it lays the digits out as the look's Layout
says and hands the ink to the look to finish; machinery.py holds what all
looks use (seeded draws, noise, lines, blur).

numpy, scipy and Pillow only, no TensorFlow: the tf.data pipeline calls
`compose` through tf.numpy_function while training runs on the same cores.
"""

from data.composer.layout import STYLES, NumberComposer

__all__ = ["STYLES", "NumberComposer"]

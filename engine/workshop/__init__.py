"""The workshop: what makes and judges the shipped weights, apart from the runtime and not in the wheel.

``synth`` (the synthetic page generator), ``train`` (resumable training loops), ``eval`` (scores on real pages),
``pconv_reference`` (the straightforward partial convolution the efficient one is checked against),
``server_bench`` and ``make_demo``. Importable from a checkout installed with the development extra
(``pip install -e '.[dev]'``, which ``bash install/dev.sh setup`` does); training state is written outside the
package, to the checkout's ``.train-state/``.
"""

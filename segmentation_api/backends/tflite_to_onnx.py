"""A TensorFlow Lite flatbuffer as an ONNX graph, for onnxruntime.

MediaPipe ships its selfie segmenter as a ``.tflite`` file (inside the ``mediapipe`` wheel);
onnxruntime, which runs every other offline model here, reads ONNX. This module rewrites the
graph op by op, in memory, at load time: the weights stay those of the file, checked by
sha256 before they get here. It knows the ops that MediaPipe's selfie segmenter uses, and
raises :class:`UnsupportedOp` for any other, naming it.

Layout: TFLite tensors are NHWC, ONNX convolutions NCHW. The graph input stays NHWC as the
file declares it (one Transpose after it), every activation inside is NCHW, and the output
is transposed back to NHWC, so the ONNX model takes and returns what the TFLite one does.
Constants are converted once: float16 weights (behind ``DEQUANTIZE`` ops) become float32,
convolution kernels ``O x H x W x I`` become ``O x I x H x W``, depthwise ones ``1 x H x W x C``
become ``C x 1 x H x W`` with ``group = C``.

The ops (facts from the TFLite schema and MediaPipe's custom op):

- ``CONV_2D``, ``DEPTHWISE_CONV_2D``: ``SAME`` padding as TensorFlow pads (the odd pixel
  after), explicit pads from the static shapes; fused activation ``NONE``, ``RELU``,
  ``RELU6``.
- ``Convolution2DTransposeBias`` (MediaPipe's custom op): inputs, kernel ``O x H x W x I``,
  bias; options three little-endian int32s ``padding, stride_w, stride_h``; the output shape
  comes from the file.
- ``ADD``, ``MUL`` (with their fused activation), ``RELU``, ``HARD_SWISH``, ``LOGISTIC``,
  ``AVERAGE_POOL_2D``, ``MEAN`` over the spatial axes, ``RESIZE_BILINEAR`` (its
  ``align_corners`` and ``half_pixel_centers`` as ONNX's coordinate modes).
"""

from __future__ import annotations

import numpy as np

#: ONNX opset of the graphs written (HardSwish needs 14).
OPSET = 17


class UnsupportedOp(ValueError):
    """The TFLite file uses an op (or an option) this converter does not know."""


def _schema():
    import tflite  # the flatbuffer schema's Python bindings (Apache-2.0); only needed here

    return tflite


_ACTIVATIONS = {0: None, 1: "Relu", 3: "Relu6"}  # TFLite ActivationFunctionType -> ONNX
_TFLITE_FLOAT32, _TFLITE_FLOAT16, _TFLITE_INT32 = 0, 1, 2


class _Graph:
    """The ONNX nodes and initialisers being written, and the TFLite tensors' ONNX names."""

    def __init__(self, model, subgraph) -> None:
        self.model, self.g = model, subgraph
        self.nodes: list = []
        self.inits: list = []
        self.const: dict[int, np.ndarray] = {}
        self.count = 0

    def name(self, index: int) -> str:
        return f"t{index}"

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def shape(self, index: int) -> list[int]:
        return self.g.Tensors(index).ShapeAsNumpy().tolist()

    def buffer(self, index: int) -> np.ndarray | None:
        """A constant tensor's value (``None`` for an activation)."""
        if index in self.const:
            return self.const[index]
        tensor = self.g.Tensors(index)
        data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        dtype = {_TFLITE_FLOAT32: np.float32, _TFLITE_FLOAT16: np.float16,
                 _TFLITE_INT32: np.int32}.get(tensor.Type())
        if dtype is None:
            raise UnsupportedOp(f"constant tensor {tensor.Name()!r} has TFLite type {tensor.Type()}")
        shape = tensor.ShapeAsNumpy().tolist() if tensor.ShapeLength() else []
        return np.frombuffer(data.tobytes(), dtype=dtype).reshape(shape)

    def initialiser(self, value: np.ndarray, hint: str) -> str:
        from onnx import numpy_helper

        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def operand(self, index: int) -> str:
        """An op's input: the activation's name, or a constant in NCHW as an initialiser."""
        value = self.buffer(index)
        if value is None:
            return self.name(index)
        value = value.astype(np.float32)
        if value.ndim == 4:
            value = value.transpose(0, 3, 1, 2)
        elif value.ndim == 1 and value.size > 1:
            value = value.reshape(-1, 1, 1)
        return self.initialiser(value, "const")

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, **attrs))

    def activation(self, fused: int, pre: str, out: str) -> None:
        """``out = act(pre)`` for a fused activation, or a plain rename for ``NONE``."""
        if fused not in _ACTIVATIONS:
            raise UnsupportedOp(f"fused activation {fused}")
        act = _ACTIVATIONS[fused]
        if act is None:
            self.node("Identity", [pre], [out])
        elif act == "Relu6":
            self.node("Clip", [pre, self.initialiser(np.float32(0), "lo"),
                               self.initialiser(np.float32(6), "hi")], [out])
        else:
            self.node(act, [pre], [out])


def _same_pads(in_hw: list[int], kernel: list[int], stride: list[int], dilation: list[int]) -> list[int]:
    """TensorFlow's SAME padding as ONNX ``pads`` ``[top, left, bottom, right]``."""
    pads_begin, pads_end = [], []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        pads_begin.append(total // 2)
        pads_end.append(total - total // 2)
    return pads_begin + pads_end


def _conv(gr: _Graph, op, opts, depthwise: bool) -> None:
    inputs, out = op.InputsAsNumpy().tolist(), op.OutputsAsNumpy()[0]
    kernel = gr.buffer(inputs[1])
    if kernel is None:
        raise UnsupportedOp("a convolution whose kernel is not a constant")
    kernel = kernel.astype(np.float32)
    in_shape = gr.shape(inputs[0])
    if depthwise:
        weights = kernel.transpose(3, 0, 1, 2)  # 1 x H x W x C -> C x 1 x H x W
        group = in_shape[3]
        if weights.shape[0] != group:
            raise UnsupportedOp("a depthwise convolution with a channel multiplier")
    else:
        weights = kernel.transpose(0, 3, 1, 2)  # O x H x W x I -> O x I x H x W
        group = 1
    stride = [opts.StrideH(), opts.StrideW()]
    dilation = [opts.DilationHFactor(), opts.DilationWFactor()]
    ksize = list(weights.shape[2:])
    pads = [0, 0, 0, 0] if opts.Padding() == 1 else _same_pads(in_shape[1:3], ksize, stride, dilation)
    names = [gr.name(inputs[0]), gr.initialiser(weights, "w")]
    if len(inputs) > 2 and inputs[2] >= 0:
        names.append(gr.initialiser(gr.buffer(inputs[2]).astype(np.float32).reshape(-1), "b"))
    pre = gr.fresh("conv")
    gr.node("Conv", names, [pre], strides=stride, dilations=dilation, pads=pads, group=group,
            kernel_shape=ksize)
    gr.activation(opts.FusedActivationFunction(), pre, gr.name(out))


def _transpose_conv_bias(gr: _Graph, op) -> None:
    inputs, out = op.InputsAsNumpy().tolist(), op.OutputsAsNumpy()[0]
    raw = bytes(op.CustomOptionsAsNumpy())
    if len(raw) < 12:
        raise UnsupportedOp("Convolution2DTransposeBias without its padding and strides")
    padding, stride_w, stride_h = np.frombuffer(raw[:12], dtype="<i4").tolist()
    kernel = gr.buffer(inputs[1]).astype(np.float32)  # O x H x W x I
    weights = kernel.transpose(3, 0, 1, 2)  # -> I x O x H x W
    bias = gr.buffer(inputs[2]).astype(np.float32).reshape(-1)
    out_shape = gr.shape(out)
    gr.node("ConvTranspose", [gr.name(inputs[0]), gr.initialiser(weights, "w"), gr.initialiser(bias, "b")],
            [gr.name(out)], strides=[stride_h, stride_w], kernel_shape=list(weights.shape[2:]),
            output_shape=out_shape[1:3], auto_pad="SAME_UPPER" if padding == 1 else "VALID")


def _pool(gr: _Graph, op, opts) -> None:
    inputs, out = op.InputsAsNumpy().tolist(), op.OutputsAsNumpy()[0]
    in_shape = gr.shape(inputs[0])
    kernel = [opts.FilterHeight(), opts.FilterWidth()]
    pre = gr.fresh("pool")
    if kernel == in_shape[1:3]:
        gr.node("GlobalAveragePool", [gr.name(inputs[0])], [pre])
    else:
        stride = [opts.StrideH(), opts.StrideW()]
        pads = [0, 0, 0, 0] if opts.Padding() == 1 else _same_pads(in_shape[1:3], kernel, stride, [1, 1])
        gr.node("AveragePool", [gr.name(inputs[0])], [pre], kernel_shape=kernel, strides=stride,
                pads=pads, count_include_pad=0)
    gr.activation(opts.FusedActivationFunction(), pre, gr.name(out))


def _mean(gr: _Graph, op, keep_dims: bool) -> None:
    inputs, out = op.InputsAsNumpy().tolist(), op.OutputsAsNumpy()[0]
    axes = sorted(int(a) % 4 for a in np.atleast_1d(gr.buffer(inputs[1])))
    if axes != [1, 2] or not keep_dims:
        raise UnsupportedOp(f"MEAN over axes {axes} (keep_dims={keep_dims}); only the spatial mean")
    gr.node("GlobalAveragePool", [gr.name(inputs[0])], [gr.name(out)])


def _resize(gr: _Graph, op, opts) -> None:
    inputs, out = op.InputsAsNumpy().tolist(), op.OutputsAsNumpy()[0]
    out_hw = gr.shape(out)[1:3]
    in_shape = gr.shape(inputs[0])
    sizes = np.array([1, in_shape[3], *out_hw], dtype=np.int64)
    mode = ("align_corners" if opts.AlignCorners() else
            "half_pixel" if opts.HalfPixelCenters() else "asymmetric")
    gr.node("Resize", [gr.name(inputs[0]), "", "", gr.initialiser(sizes, "sizes")], [gr.name(out)],
            mode="linear", coordinate_transformation_mode=mode)


def convert(data: bytes, producer: str = "backdrop"):
    """The TFLite flatbuffer ``data`` (one subgraph, float) as an ``onnx.ModelProto`` whose
    inputs and outputs keep the file's names (sanitised), NHWC shapes and float32 dtype.

    Raises:
        UnsupportedOp: an op or option outside the list in the module docstring.
    """
    from onnx import TensorProto, helper

    tfl = _schema()
    model = tfl.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise UnsupportedOp(f"{model.SubgraphsLength()} subgraphs; one is supported")
    g = model.Subgraphs(0)
    gr = _Graph(model, g)
    builtin = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = builtin.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        inputs, outputs = op.InputsAsNumpy().tolist(), op.OutputsAsNumpy().tolist()
        table = op.BuiltinOptions()

        def options(cls, table=table):
            o = cls()
            o.Init(table.Bytes, table.Pos)
            return o

        if name == "DEQUANTIZE":
            value = gr.buffer(inputs[0])
            if value is None:
                raise UnsupportedOp("DEQUANTIZE of an activation (a quantised model)")
            gr.const[outputs[0]] = value.astype(np.float32)
        elif name == "CONV_2D":
            _conv(gr, op, options(tfl.Conv2DOptions), depthwise=False)
        elif name == "DEPTHWISE_CONV_2D":
            _conv(gr, op, options(tfl.DepthwiseConv2DOptions), depthwise=True)
        elif name == "CUSTOM" and code.CustomCode() == b"Convolution2DTransposeBias":
            _transpose_conv_bias(gr, op)
        elif name in ("ADD", "MUL"):
            opts = options(tfl.AddOptions if name == "ADD" else tfl.MulOptions)
            pre = gr.fresh(name.lower())
            gr.node(name.capitalize(), [gr.operand(inputs[0]), gr.operand(inputs[1])], [pre])
            gr.activation(opts.FusedActivationFunction(), pre, gr.name(outputs[0]))
        elif name in ("RELU", "HARD_SWISH", "LOGISTIC"):
            onnx_op = {"RELU": "Relu", "HARD_SWISH": "HardSwish", "LOGISTIC": "Sigmoid"}[name]
            gr.node(onnx_op, [gr.name(inputs[0])], [gr.name(outputs[0])])
        elif name == "AVERAGE_POOL_2D":
            _pool(gr, op, options(tfl.Pool2DOptions))
        elif name == "MEAN":
            _mean(gr, op, bool(options(tfl.ReducerOptions).KeepDims()))
        elif name == "RESIZE_BILINEAR":
            _resize(gr, op, options(tfl.ResizeBilinearOptions))
        else:
            custom = code.CustomCode().decode() if name == "CUSTOM" else ""
            raise UnsupportedOp(f"TFLite op {name}{' ' + custom if custom else ''} is not supported")

    graph_inputs, graph_outputs = [], []
    for k in range(g.InputsLength()):
        index = g.Inputs(k)
        public = g.Tensors(index).Name().decode().replace("/", "_")
        shape = gr.shape(index)
        graph_inputs.append(helper.make_tensor_value_info(public, TensorProto.FLOAT, shape))
        gr.nodes.insert(0, helper.make_node("Transpose", [public], [gr.name(index)], perm=[0, 3, 1, 2]))
    for k in range(g.OutputsLength()):
        index = g.Outputs(k)
        public = g.Tensors(index).Name().decode().replace("/", "_")
        graph_outputs.append(helper.make_tensor_value_info(public, TensorProto.FLOAT, gr.shape(index)))
        gr.node("Transpose", [gr.name(index)], [public], perm=[0, 2, 3, 1])
    graph = helper.make_graph(gr.nodes, "tflite", graph_inputs, graph_outputs, gr.inits)
    onnx_model = helper.make_model(graph, producer_name=producer,
                                   opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = 8
    return onnx_model

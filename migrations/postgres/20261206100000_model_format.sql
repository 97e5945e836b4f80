-- The file format of an uploaded model (issue 11): `safetensors` (every row stored before) or
-- `onnx`, whose graph gave the model's architecture and whose file is model 2's graph when a
-- job's fused model is downloaded as ONNX.
ALTER TABLE models ADD COLUMN format TEXT NOT NULL DEFAULT 'safetensors'
    CHECK (format IN ('safetensors', 'onnx'));

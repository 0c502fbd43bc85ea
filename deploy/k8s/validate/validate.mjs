// Validates custom resources against validators generated from their CRDs' OpenAPI schemas (npm @kubernetes-models).
// Reads a JSON array of manifests on stdin; prints one line per invalid manifest; exits 1 if any is invalid, 2 if a
// kind has no validator here.
import { readFileSync } from "node:fs";

const MODELS = {
  "keda.sh/v1alpha1/ScaledObject": async () =>
    (await import("@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject")).ScaledObject,
  "monitoring.coreos.com/v1/ServiceMonitor": async () =>
    (await import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1")).ServiceMonitor,
};

const manifests = JSON.parse(readFileSync(0, "utf8"));
let status = 0;
for (const manifest of manifests) {
  const key = `${manifest.apiVersion}/${manifest.kind}`;
  const load = MODELS[key];
  if (!load) {
    console.log(`${key}: no validator`);
    status = Math.max(status, 2);
    continue;
  }
  const Model = await load();
  try {
    new Model(manifest).validate();
    console.log(`${key} ${manifest.metadata?.name}: valid`);
  } catch (error) {
    console.log(`${key} ${manifest.metadata?.name}: ${error.message}`);
    status = Math.max(status, 1);
  }
}
process.exit(status);

// roon layer graph: constraints and indexes, applied by `roon graph init`.
//
// Statements end with ';'. Lines starting with '//' are comments. Every statement is
// idempotent (IF NOT EXISTS), so `roon graph init` may run any number of times.
//
// Graph model (Neo4j 5):
//   (:Model {id, name, input_width, output_width, n_layers, n_neurons, n_params, widths,
//            activations, dtype, metadata, format, source, file_sha256, edges_min_weight,
//            ingested_at, feeds_min_weight, pushed})
//   (:Layer {id: '<model_id>:<layer>', model_id, index, fan_in, width, activation, input_domain})
//   (:Layer:Input {id: '<model_id>:-1', model_id, index: -1, width})      the model inputs
//   (:Neuron {id: '<model_id>:<layer>:<i>', model_id, layer, index, fan_in, bias,
//             weight_norm, activation})
//   (:Neuron:Input {id: '<model_id>:-1:<i>', model_id, layer: -1, index})  input i
//   (:Signature {hash, domain, fan_in, fire_count, fire_fraction, exact, chow, truth_table})
//   (:Circuit {name, description})
//
//   (:Model)-[:HAS_LAYER]->(:Layer)               input layer included
//   (:Layer)-[:NEXT]->(:Layer)                    index i-1 -> i, from the input layer on
//   (:Layer)-[:HAS_NEURON]->(:Neuron)
//   (:Neuron)-[:FEEDS {weight}]->(:Neuron)        all edges, or |weight| >= --min-weight
//   (:Neuron)-[:COMPUTES {method, fragile, margin, relevant}]->(:Signature)
//   (:Circuit)-[:APPEARS_IN {layer_offset, maps, verified}]->(:Model)
//   (:Model)-[:DERIVED_FROM {rule, params, changes, max_output_change, created_at}]->(:Model)
//
// Input neurons are ordinary :Neuron nodes with layer = -1 and the extra :Input label,
// under a (:Layer:Input {index: -1}) layer: one id space for every FEEDS source, and a
// query that wants only computing neurons says `WHERE NOT n:Input` (or `n.layer >= 0`).
//
// Signature nodes key on `hash` alone: the hash digests (domain, fan-in, function), so
// one hash is one function. fire_count is a decimal string (it may exceed 64 bits);
// fire_fraction is its float approximation for sorting and filtering.

CREATE CONSTRAINT model_id IF NOT EXISTS
FOR (m:Model) REQUIRE m.id IS UNIQUE;

CREATE CONSTRAINT layer_id IF NOT EXISTS
FOR (l:Layer) REQUIRE l.id IS UNIQUE;

CREATE CONSTRAINT neuron_id IF NOT EXISTS
FOR (n:Neuron) REQUIRE n.id IS UNIQUE;

CREATE CONSTRAINT signature_hash IF NOT EXISTS
FOR (s:Signature) REQUIRE s.hash IS UNIQUE;

// Circuit nodes key on `id`, the content hash of the circuit's network: two circuits
// may share a name (a library circuit and a file of the same stem), never an id. Graphs
// initialised by an older roon keyed on the name; that constraint goes.
DROP CONSTRAINT circuit_name IF EXISTS;

CREATE CONSTRAINT circuit_id IF NOT EXISTS
FOR (c:Circuit) REQUIRE c.id IS UNIQUE;

CREATE INDEX circuit_name_lookup IF NOT EXISTS
FOR (c:Circuit) ON (c.name);

// The uniqueness constraint on Signature.hash is backed by a range index already; this
// text index serves prefix searches (`s.hash STARTS WITH $prefix`) from the browser.
CREATE TEXT INDEX signature_hash_text IF NOT EXISTS
FOR (s:Signature) ON (s.hash);

// Filters the per-model queries use: neurons of one model and layer, layers of a model.
CREATE INDEX neuron_model_layer IF NOT EXISTS
FOR (n:Neuron) ON (n.model_id, n.layer);

CREATE INDEX layer_model IF NOT EXISTS
FOR (l:Layer) ON (l.model_id);

CREATE INDEX model_name IF NOT EXISTS
FOR (m:Model) ON (m.name);

//! backflow-engine

//! Readings → rates → the Outlyer (`base.*`) and Prometheus (cAdvisor) views.

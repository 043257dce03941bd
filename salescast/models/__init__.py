"""Model families behind one interface (`Forecaster`), and the ensemble that combines them."""

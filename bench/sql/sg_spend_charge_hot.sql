SELECT allowed FROM spendguard.spend_charge('hot', 'g', 1);
